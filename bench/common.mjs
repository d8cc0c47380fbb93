// What the benchmark scripts share: the machine they ran on, the command that ran them, writing
// their own section of a markdown file (bench/results.md) without touching the others, and psql.
import { execFileSync, execSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'

/** `{ nproc, model, kernel }` of this machine (nproc as the shell sees it, under cgroup limits). */
export function machine() {
  let nproc = String(cpus().length)
  let kernel = ''
  try {
    nproc = execSync('nproc', { encoding: 'utf8' }).trim()
    kernel = execSync('uname -sr', { encoding: 'utf8' }).trim()
  } catch {}
  return { nproc, model: cpus()[0]?.model ?? 'unknown CPU', kernel }
}

/** The machine in one phrase: `nproc 2, <CPU model>, <kernel>`. */
export function machineLine() {
  const m = machine()
  return `nproc ${m.nproc}, ${m.model}, ${m.kernel}`
}

/** The command line of `script` as it ran, with the URL after `--pg` left out (it may hold a password). */
export function commandLine(script) {
  const given = process.argv.slice(2).map((a, i, all) => (all[i - 1] === '--pg' ? 'URL' : a))
  return [`node ${script}`, ...given].join(' ')
}

/** Writes `section` (starting with the heading `title`) into `file`: in place of the section with
 *  the same title, else at the end. */
export function saveSection(file, title, section) {
  if (!existsSync(file)) return writeFileSync(file, section)
  const text = readFileSync(file, 'utf8')
  const start = text.indexOf(`${title}\n`)
  if (start < 0) return writeFileSync(file, `${text.replace(/\n*$/, '\n\n')}${section}`)
  const rest = text.slice(start + title.length)
  const end = rest.search(/\n#{1,2} /)
  writeFileSync(file, text.slice(0, start) + section.replace(/\n*$/, '\n') + (end < 0 ? '' : rest.slice(end)))
}

/** Runs `sql` with psql on the server at `url`; its output, trimmed. stderr is kept, not printed: a
 *  DROP ... CASCADE lists every object it drops there. */
export function psql(url, sql) {
  return execFileSync('psql', [url, '-qtAX', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

/** The `kv` table of the point and range workloads (bench/run.mjs, bench/first-calls.mjs), the same on
 *  both sides: `fill(rows)` rows of ~110 bytes, and the point select by primary key. */
export const KV = {
  table: 'CREATE TABLE kv(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)',
  fill: (rows) => `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows})
           INSERT INTO kv(id, k, v) SELECT x, x * 7 % 1000, printf('%.100c', char(97 + x % 26)) FROM c`,
  point: 'SELECT id, k, v FROM kv WHERE id = ?',
}

/** A seeded pseudo-random sequence in [0, 1) (xorshift32): the same picks on every run. */
export function random(seed) {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 4294967296
  }
}

/** `--name value` pairs as `{ name: value }`; anything else is an error. */
export function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument '${argv[i]}'`)
    out[argv[i].slice(2)] = argv[++i]
  }
  return out
}
