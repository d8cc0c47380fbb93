// A process that ends with databases still open (or calls still in flight) exits cleanly: the
// reply channels are torn down by Node without a crash.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const script = (dir: string, body: string) => `
const { Depot } = require(${JSON.stringify(join(__dirname, '..', 'index.js'))});
(async () => {
  const depot = await Depot.open({ path: ${JSON.stringify(dir)} });
  const dbs = [];
  for (let i = 0; i < 20; i++) dbs.push(await depot.openDatabase('db' + i));
  for (const db of dbs) await db.exec('CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (1)');
  ${body}
  globalThis.keep = dbs;
})();
`

describe('process exit', () => {
  for (const [name, body] of [
    ['with databases open', ''],
    ['with calls in flight', "for (const db of dbs) db.query('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*) FROM c'); setTimeout(() => process.exit(0), 5);"],
  ]) {
    it(`is clean ${name}`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'depot-exit-'))
      try {
        const r = spawnSync(process.execPath, ['-e', script(join(dir, 'depot'), body)], { encoding: 'utf8', timeout: 30_000 })
        expect(r.signal).toBeNull()
        expect(r.status, r.stderr).toBe(0)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }
})
