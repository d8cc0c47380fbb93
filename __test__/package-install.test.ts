// The install path of a user: the tarballs that `npm run package` writes to dist/ (the main package
// and the linux-x64-gnu platform package), installed into a new TypeScript project with no Rust
// toolchain on PATH, type-checked by a strict `nodenext` tsc, and run under CommonJS and ESM: the
// actor host of examples/actor-host, with one actor moving between two host processes on PostgreSQL.
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = join(__dirname, '..')
const dist = join(root, 'dist')
const version: string = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version
const mainTarball = join(dist, `depot-sqlite-${version}.tgz`)
const platformTarball = join(dist, `depot-sqlite-core-linux-x64-gnu-${version}.tgz`)

/** PATH without any directory that holds cargo or rustc: nothing can be compiled. */
const pathWithoutRust = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => dir && !existsSync(join(dir, 'cargo')) && !existsSync(join(dir, 'rustc')))
  .join(delimiter)
const envWithoutRust = { ...process.env, PATH: pathWithoutRust, CARGO: '', RUSTC: '' }

function sh(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  const r = spawnSync(command, args, { ...options, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** `npm pack --dry-run --json` of a directory: the paths the tarball would hold. */
function packedFiles(dir: string): string[] {
  const out = JSON.parse(sh('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir }))
  return out[0].files.map((f: { path: string }) => f.path).sort()
}

let project: string

beforeAll(() => {
  if (!existsSync(mainTarball) || !existsSync(platformTarball)) {
    // `npm test` packages first; run alone, this test builds what it needs (minutes).
    sh(process.execPath, [join(root, 'scripts', 'package.mjs'), '--targets', 'linux-x64-gnu'], { cwd: root })
  }
  project = mkdtempSync(join(tmpdir(), 'depot-sqlite-consumer-'))
}, 30 * 60_000)

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true })
})

describe('the packages', () => {
  it('hold only what they need', () => {
    const main = packedFiles(root)
    expect(main.filter((f) => !/^(index\.(js|d\.ts)|binding\.(js|d\.ts)|package\.json|README\.md|LICENSE|bin\/[\w-]+\.js|scripts\/install\.mjs|lib\/[\w-]+\.js|adapters\/[\w-]+\.(js|d\.ts))$/.test(f))).toEqual([])
    for (const needed of ['index.js', 'index.d.ts', 'binding.js', 'binding.d.ts', 'lib/load.js', 'scripts/install.mjs', 'bin/depot-sqlite.js']) {
      expect(main).toContain(needed)
    }
    expect(packedFiles(join(root, 'npm', 'linux-x64-gnu'))).toEqual(['README.md', 'depot-sqlite.linux-x64-gnu.node', 'package.json'])
  })
})

describe('installing from the tarballs without Rust', () => {
  it('installs without compiling, type-checks under nodenext, and moves an actor between a CommonJS and an ES module host', async () => {
    expect(spawnSync('cargo', ['--version'], { env: envWithoutRust }).error).toBeDefined()
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
    const started = Date.now()
    sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', mainTarball, platformTarball], { cwd: project, env: envWithoutRust })
    console.log(`npm install of the two tarballs: ${((Date.now() - started) / 1000).toFixed(1)} s`)
    const installed = join(project, 'node_modules', '@depot-sqlite', 'core-linux-x64-gnu', 'depot-sqlite.linux-x64-gnu.node')
    expect(existsSync(installed)).toBe(true)
    // The glibc build runs on old distributions: no symbol newer than glibc 2.28.
    const { highestGlibc } = await import('../scripts/package.mjs')
    const [major, minor] = highestGlibc(installed)
    expect(major * 1000 + minor).toBeLessThanOrEqual(2028)
    // No local build happened: the addon the project loads is the prebuilt one.
    expect(existsSync(join(project, 'node_modules', 'depot-sqlite', 'target'))).toBe(false)

    // The example, compiled twice by a strict nodenext tsc: as CommonJS (.cts) and as ESM (.mts).
    const source = join(root, 'examples', 'actor-host', 'host.ts')
    copyFileSync(source, join(project, 'host.cts'))
    copyFileSync(source, join(project, 'host.mts'))
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          outDir: 'out',
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
        },
        files: ['host.cts', 'host.mts'],
      }),
    )
    sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: project, env: envWithoutRust })
    expect(readFileSync(join(project, 'out', 'host.cjs'), 'utf8')).toContain("require(\"depot-sqlite\")")
    expect(readFileSync(join(project, 'out', 'host.mjs'), 'utf8')).toContain("from 'depot-sqlite'")

    const url = process.env.DEPOT_TEST_PG_URL
    if (!url) throw new Error('DEPOT_TEST_PG_URL is not set: run `npm test`, or export DEPOT_TEST_PG_URL=$(scripts/pg.sh start)')
    const schema = `consumer_${process.pid}_${Date.now()}`
    const hostA = await startHost(join(project, 'out', 'host.cjs'), url, schema, 'host-a')
    const hostB = await startHost(join(project, 'out', 'host.mjs'), url, schema, 'host-b')
    try {
      const post = (port: number, path: string) => fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST' })
      for (const n of [1, 2, 3]) {
        const r = await post(hostA.port, '/actors/42/increment')
        expect(await r.json()).toEqual({ host: 'host-a', actor: '42', count: n })
      }
      // Host B takes the actor over (a newer writer generation) and finds its data intact.
      const moved = await post(hostB.port, '/actors/42/increment')
      expect(await moved.json()).toEqual({ host: 'host-b', actor: '42', count: 4 })
      // Host A is fenced: its write is refused, and nothing it tried is in the data.
      const fenced = await post(hostA.port, '/actors/42/increment')
      expect(fenced.status).toBe(409)
      expect(await fenced.json()).toEqual({ host: 'host-a', actor: '42', error: 'ERR_FENCED', moved: true })
      const read = await fetch(`http://127.0.0.1:${hostB.port}/actors/42`)
      expect(await read.json()).toEqual({ host: 'host-b', actor: '42', count: 4 })
    } finally {
      for (const host of [hostA, hostB]) {
        await fetch(`http://127.0.0.1:${host.port}/shutdown`, { method: 'POST' }).catch(() => {})
        await host.exited
      }
    }
  }, 10 * 60_000)
})

describe('with no matching prebuilt package and no Rust', () => {
  it('npm install stops with one message naming the platform and what to install', () => {
    const dir = mkdtempSync(join(tmpdir(), 'depot-sqlite-nobinary-'))
    try {
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
      // Only the main tarball: the platform package is not on the registry either, so nothing matches.
      const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', mainTarball], { cwd: dir, env: envWithoutRust, encoding: 'utf8' })
      expect(r.status).not.toBe(0)
      expect(r.stderr).toContain('depot-sqlite: no prebuilt binary for linux-x64-gnu')
      expect(r.stderr).toContain('@depot-sqlite/core-linux-x64-gnu')
      // Installed with scripts off (npm's default for dependencies that were not approved), the
      // same facts come from require().
      sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', mainTarball], { cwd: dir, env: envWithoutRust })
      const load = spawnSync(process.execPath, ['-e', "try { require('depot-sqlite') } catch (e) { console.log(e.code + ': ' + e.message) }"], { cwd: dir, encoding: 'utf8' })
      expect(load.stdout).toContain('ERR_NATIVE_BINARY_MISSING: depot-sqlite: no native binary for linux-x64-gnu')
      expect(load.stdout).toContain('https://rustup.rs')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 5 * 60_000)
})

/** Starts a compiled host; resolves once it printed the port it listens on. */
function startHost(script: string, url: string, schema: string, name: string) {
  const child = spawn(process.execPath, [script, '--url', url, '--schema', schema, '--name', name], {
    cwd: project,
    env: envWithoutRust,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return new Promise<{ port: number; exited: Promise<void> }>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk) => {
      out += chunk
      const line = out.split('\n')[0]
      if (out.includes('\n')) resolve({ port: JSON.parse(line).port, exited })
    })
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before listening`)))
  })
}
