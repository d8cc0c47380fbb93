#!/usr/bin/env node
// `npm run soak -- [--seeds N] [--ops M] [--store memory|file|postgres] [--first-seed S]
//                  [--threads T] [--shrink-runs R] [--planted ack-before-apply]`
// `npm run soak -- --replay FILE [--seed S] [--store ...]`
//
// A thin wrapper over the Rust chaos harness (crates/depot-test-support/examples/soak.rs): builds it
// in release mode, starts a throwaway PostgreSQL server for `--store postgres` when
// DEPOT_TEST_PG_URL is not set (scripts/pg.sh, stopped again at the end), and runs it with the
// arguments given. The harness prints progress as seeds finish and, for a diverging seed, writes a
// shrunk plan to target/soak-repro-SEED.txt and prints the command that replays it.
import { spawnSync } from 'node:child_process'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const args = process.argv.slice(2)

function sh(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit', ...options })
  if (result.error) {
    console.error(`soak: cannot run ${command}: ${result.error.message}`)
    return 127
  }
  return result.status ?? 1
}

const build = sh('cargo', ['build', '--release', '--quiet', '-p', 'depot-test-support', '--example', 'soak'])
if (build !== 0) process.exit(build)

const env = { ...process.env }
let stopPg = () => {}
const store = args[args.indexOf('--store') + 1]
if (args.includes('--store') && store === 'postgres' && !env.DEPOT_TEST_PG_URL) {
  const wasRunning = spawnSync('bash', ['scripts/pg.sh', 'status'], { cwd: root, stdio: 'ignore' }).status === 0
  const started = spawnSync('bash', ['scripts/pg.sh', 'start'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  if (started.status !== 0) {
    console.error('soak: PostgreSQL did not start (scripts/pg.sh start)')
    process.exit(1)
  }
  env.DEPOT_TEST_PG_URL = started.stdout.trim()
  // A server that was already running (someone else's) is reused and left running.
  if (!wasRunning) stopPg = () => spawnSync('bash', ['scripts/pg.sh', 'stop'], { cwd: root, stdio: 'inherit' })
}

const status = sh(`${root}/target/release/examples/soak`, args, { env })
stopPg()
process.exit(status)
