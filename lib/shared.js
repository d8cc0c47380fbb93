'use strict'
// Small pieces that index.js and the adapters share (internal: not a public export).

/** An `Error` with a stable `code`, as every rejection of this package is. */
function codedError(code, message) {
  const error = new Error(`${code}: ${message}`)
  error.code = code
  return error
}

/**
 * Makes row objects for one result's `columns`, decided once per result, not per row. Where names
 * repeat (`SELECT a.id, b.id ...`) the last column wins; a column named `__proto__` is an own
 * property, never the object's prototype.
 */
function rowMaker(columns) {
  if (!columns.includes('__proto__')) {
    return (row) => {
      const object = {}
      for (let i = 0; i < columns.length; i++) object[columns[i]] = row[i]
      return object
    }
  }
  return (row) => {
    const object = {}
    for (let i = 0; i < columns.length; i++) {
      Object.defineProperty(object, columns[i], { value: row[i], writable: true, enumerable: true, configurable: true })
    }
    return object
  }
}

/** `"name"`: an SQL identifier, double-quoted, inner quotes doubled (ERR_INVALID_ARGUMENT for a non-string, empty or NUL-holding name). */
function quoteIdentifier(name, what = 'an identifier') {
  if (typeof name !== 'string' || name === '') throw codedError('ERR_INVALID_ARGUMENT', `${what} must be a non-empty string`)
  if (name.includes('\0')) throw codedError('ERR_INVALID_ARGUMENT', `${what} cannot hold a NUL character`)
  return `"${name.replaceAll('"', '""')}"`
}

/** Whether `value` is a database handle (what `depot.openDatabase` resolves to, traced or not). */
function isHandle(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    ['execute', 'executeBatch', 'executeScript', 'transaction', 'beginTransaction', 'close'].every(
      (method) => typeof value[method] === 'function',
    )
  )
}

module.exports = { codedError, rowMaker, quoteIdentifier, isHandle }
