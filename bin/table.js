'use strict'
// Formats rows as a plain-text table, the way the CLI prints query results:
//
//   id | name
//   ---+------
//   1  | alice
//   (1 row)

/** How one value is shown: NULL, blobs as X'hex', everything else as its string form. */
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

module.exports = { formatTable, formatValue }
