'use strict'
// Splits an SQL script into statements at top-level semicolons.
//
// Semicolons inside string literals ('...'), quoted identifiers ("...", `...`, [...]) and comments
// (-- and /* */) do not split, and neither do those inside a CREATE TRIGGER body, which ends at
// `END;`. Empty statements are dropped.

/** Returns the statements of `sql`, each trimmed, without the trailing semicolon. */
function splitStatements(sql) {
  const statements = []
  let start = 0
  let i = 0
  const closers = { "'": "'", '"': '"', '`': '`', '[': ']' }
  while (i < sql.length) {
    const ch = sql[i]
    if (ch in closers) {
      const end = sql.indexOf(closers[ch], i + 1)
      i = end === -1 ? sql.length : end + 1
    } else if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i)
      i = end === -1 ? sql.length : end + 1
    } else if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2)
      i = end === -1 ? sql.length : end + 2
    } else if (ch === ';') {
      const text = sql.slice(start, i)
      if (isTrigger(text) && !endsWithEnd(text)) {
        i += 1
        continue
      }
      push(statements, text)
      i += 1
      start = i
    } else {
      i += 1
    }
  }
  push(statements, sql.slice(start))
  return statements
}

function push(statements, text) {
  if (stripComments(text).trim() !== '') statements.push(text.trim())
}

function stripComments(text) {
  return text.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?(\*\/|$)/g, '')
}

function isTrigger(text) {
  return /^\s*CREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(stripComments(text))
}

function endsWithEnd(text) {
  return /\bEND\s*$/i.test(stripComments(text))
}

module.exports = { splitStatements }
