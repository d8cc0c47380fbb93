'use strict'
// The text formats of the depot-sqlite CLI, for the SQL mode (its --json and --csv flags) and for the
// shell (.mode) alike, plus the CSV reader of the shell's .import and the one-line error report.
//
//   table   id | name          csv   id,name        json  [{"id":1,"name":"alice"}]
//           ---+------               1,alice
//           1  | alice                                line     id = 1
//           (1 row)                                         name = alice
//
// Values, in every mode: integers exactly (the CLI reads them as bigints), NULL as `NULL` (table and
// line), an empty field (csv) or `null` (json); BLOBs as X'HEX' (as a hex string in json).

const MODES = ['table', 'csv', 'json', 'line']

/** How one value is shown in table and line mode: NULL, blobs as X'hex', everything else as its string form. */
function formatValue(value) {
  if (value === null || value === undefined) return 'NULL'
  if (Buffer.isBuffer(value)) return `X'${value.toString('hex').toUpperCase()}'`
  return String(value)
}

/** Returns the table for `columns` and `rows` (arrays of values), ending with a newline. */
function formatTable(columns, rows) {
  const cells = rows.map((row) => row.map(formatValue))
  const widths = columns.map((name, c) => Math.max(name.length, ...cells.map((row) => row[c].length)))
  const line = (values) => values.map((v, c) => v.padEnd(widths[c])).join(' | ').trimEnd()
  const out = [line(columns), widths.map((w) => '-'.repeat(w)).join('-+-')]
  for (const row of cells) out.push(line(row))
  out.push(`(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`)
  return out.join('\n') + '\n'
}

/** One CSV field: quoted when it holds a comma, a quote, a line break or edge spaces (quotes doubled). */
function csvField(value) {
  const text = value === null || value === undefined ? '' : formatValue(value)
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

/** The header line and one line per row, comma-separated, lines ending in `\n`. */
function formatCsv(columns, rows) {
  return [columns, ...rows].map((fields) => fields.map(csvField).join(',') + '\n').join('')
}

/** One value as JSON: integers as exact numbers (bigints included), non-finite reals as null, blobs as hex. */
function jsonValue(value) {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'bigint') return value.toString()
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : 'null'
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('hex').toUpperCase())
  return JSON.stringify(value)
}

/** The rows as one line holding a JSON array of objects (column name -> value). */
function formatJson(columns, rows) {
  const keys = columns.map((name) => JSON.stringify(name))
  const objects = rows.map((row) => `{${row.map((value, c) => `${keys[c]}:${jsonValue(value)}`).join(',')}}`)
  return `[${objects.join(',')}]\n`
}

/** Each row as `column = value` lines, the names right-aligned; an empty line between rows. */
function formatLine(columns, rows) {
  const width = Math.max(0, ...columns.map((name) => name.length))
  const blocks = rows.map((row) => row.map((value, c) => `${columns[c].padStart(width)} = ${formatValue(value)}\n`).join(''))
  return blocks.join('\n')
}

const FORMATTERS = { table: formatTable, csv: formatCsv, json: formatJson, line: formatLine }

/** The text for one result (`columns`, `rows`) in `mode` (one of MODES). */
function formatResult(mode, columns, rows) {
  const format = FORMATTERS[mode]
  if (!format) throw new Error(`unknown output mode ${mode}`)
  return format(columns, rows)
}

/**
 * Parses CSV text (RFC 4180: fields separated by commas, records by LF or CRLF, quoted fields may
 * hold commas, line breaks and doubled quotes) into records, arrays of strings. A leading byte order
 * mark and empty lines at the end are ignored. Throws, naming the line, on an unterminated quoted
 * field or on text after a closing quote.
 */
function parseCsv(text) {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const records = []
  let record = []
  let field = ''
  let line = 1
  let i = 0
  const atLineEnd = () => text[i] === '\n' || (text[i] === '\r' && text[i + 1] === '\n')
  while (i < text.length) {
    if (text[i] === '"' && field === '') {
      // A quoted field: up to the quote that is not doubled, then a separator or the end.
      const opened = line
      i++
      for (;;) {
        if (i >= text.length) throw csvError(`line ${opened}: a quoted field is not closed`)
        if (text[i] === '"' && text[i + 1] === '"') {
          field += '"'
          i += 2
        } else if (text[i] === '"') {
          i++
          break
        } else {
          if (text[i] === '\n') line++
          field += text[i++]
        }
      }
      if (i < text.length && text[i] !== ',' && !atLineEnd()) throw csvError(`line ${line}: text after the closing quote of a field`)
    } else if (text[i] !== ',' && !atLineEnd()) {
      field += text[i++]
      continue
    }
    // At a comma, a line end or the end of the text: the field is complete.
    record.push(field)
    field = ''
    if (text[i] === ',') {
      i++
    } else {
      records.push(record)
      record = []
      if (i < text.length) {
        i += text[i] === '\r' ? 2 : 1
        line++
      }
    }
  }
  if (field !== '' || record.length > 0) records.push([...record, field])
  while (records.length > 0 && records[records.length - 1].length === 1 && records[records.length - 1][0] === '') records.pop()
  return records
}

function csvError(message) {
  const error = new Error(message)
  error.code = 'ERR_CSV'
  return error
}

/** `error: CODE: message` for an error (the code not repeated when the message starts with it, as Node's fs errors do). */
function formatError(error) {
  const code = error && error.code ? error.code : 'ERR_UNKNOWN'
  let message = error && error.message ? error.message : String(error)
  if (message.startsWith(`${code}: `)) message = message.slice(code.length + 2)
  return `error: ${code}: ${message}\n`
}

module.exports = { MODES, formatValue, formatTable, formatCsv, formatJson, formatLine, formatResult, parseCsv, formatError }
