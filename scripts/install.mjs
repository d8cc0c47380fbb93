#!/usr/bin/env node
// Install step of depot-sqlite: make sure `require('depot-sqlite')` works after `npm install`.
//
// 1. If the addon already loads (a prebuilt per-platform package matched, or a local build exists),
//    there is nothing to do.
// 2. Otherwise, when the Rust sources are here (a git clone), build from source with
//    `napi build --platform --release`, or with plain cargo when the napi CLI is not installed.
// Set DEPOT_SQLITE_SKIP_BUILD=1 to skip this step entirely.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const { platformSuffix } = createRequire(import.meta.url)('../lib/load.js')

function addonLoads() {
  const probe = spawnSync(process.execPath, ['-e', "require('./index.js')"], { cwd: root, stdio: 'ignore' })
  return probe.status === 0
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
  if (result.error) throw result.error
  return result.status === 0
}

/** Fallback when @napi-rs/cli is absent: cargo build, then copy the library where index.js looks. */
function buildWithCargo() {
  if (!run('cargo', ['build', '--release', '--lib', '-p', 'depot-sqlite'])) return false
  const targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target')
  const names = { linux: 'libdepot_sqlite.so', darwin: 'libdepot_sqlite.dylib', win32: 'depot_sqlite.dll' }
  const built = join(targetDir, 'release', names[process.platform] ?? 'libdepot_sqlite.so')
  if (!existsSync(built)) return false
  copyFileSync(built, join(root, `depot-sqlite.${platformSuffix()}.node`))
  return true
}

function main() {
  if (process.env.DEPOT_SQLITE_SKIP_BUILD) return 0
  if (addonLoads()) return 0
  const suffix = platformSuffix()
  if (!existsSync(join(root, 'Cargo.toml'))) {
    console.error(
      `depot-sqlite: no prebuilt binary for ${suffix}: the optional dependency @depot-sqlite/core-${suffix} is not ` +
        'installed (reinstall without --omit=optional), or no such package exists for this platform; then build ' +
        'from source in a clone of depot-sqlite with Rust installed (https://rustup.rs).',
    )
    return 1
  }
  if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(
      `depot-sqlite: no prebuilt binary for ${suffix}, and building from source needs Rust, which is not ` +
        'installed (cargo is not on PATH): install it from https://rustup.rs, then run npm install again.',
    )
    return 1
  }
  console.error('depot-sqlite: no prebuilt binary matches this platform; building from source (needs Rust)...')
  const napi = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'napi.cmd' : 'napi')
  const ok = existsSync(napi) ? run(napi, ['build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']) : buildWithCargo()
  if (!ok || !addonLoads()) {
    console.error('depot-sqlite: building the native addon failed (see above).')
    return 1
  }
  return 0
}

process.exit(main())
