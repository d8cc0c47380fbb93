// Writing one benchmark's section of a markdown file (bench/results.md): in place of the section
// with the same title, else at the end, so that each script owns its section and leaves the rest.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

/** Writes `section` (starting with the heading `title`) into `file`. */
export function saveSection(file, title, section) {
  if (!existsSync(file)) return writeFileSync(file, section)
  const text = readFileSync(file, 'utf8')
  const start = text.indexOf(`${title}\n`)
  if (start < 0) return writeFileSync(file, `${text.replace(/\n*$/, '\n\n')}${section}`)
  const rest = text.slice(start + title.length)
  const end = rest.search(/\n#{1,2} /)
  writeFileSync(file, text.slice(0, start) + section.replace(/\n*$/, '\n') + (end < 0 ? '' : rest.slice(end)))
}
