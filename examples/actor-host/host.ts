// An actor host: each actor gets its own depot-sqlite database, and HTTP requests reach actors.
//
//   node host.js --url postgres://... [--schema S] [--port 0] [--name host-a]
//
//   POST /actors/:id/increment   adds 1 to the actor's counter, answers { host, actor, count }
//   GET  /actors/:id             answers { host, actor, count }
//   POST /shutdown               closes every actor and the depot, then exits
//
// On the PostgreSQL store an actor moves between hosts by itself: the first request a host serves for
// an actor opens its database with the next writer generation, which fences the host that had it.
// That host's next write then fails with ERR_FENCED: it drops the actor and answers 409, and the data
// is intact on the new host. The port it listens on is printed as one JSON line on stdout.
import http from 'node:http'
import { Depot, type NativeDatabaseHandle } from 'depot-sqlite'

function option(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`)
  const value = i > 0 ? process.argv[i + 1] : fallback
  if (value === undefined) throw new Error(`missing --${name}`)
  return value
}

const hostName = option('name', `host-${process.pid}`)
const actors = new Map<string, Promise<NativeDatabaseHandle>>()
// No top-level await: the same file compiles as CommonJS and as an ES module.
let depot: Depot

/** The actor's database on this host, opened (and its table made) on first use. */
function actor(id: string): Promise<NativeDatabaseHandle> {
  let db = actors.get(id)
  if (!db) {
    db = depot.openDatabase(`actor-${id}`).then(async (handle) => {
      await handle.exec('CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)')
      return handle
    })
    actors.set(id, db)
    db.catch(() => actors.delete(id))
  }
  return db
}

async function count(db: NativeDatabaseHandle): Promise<number> {
  const { rows } = await db.query('SELECT n FROM counter WHERE id = 1')
  return rows.length ? Number(rows[0][0]) : 0
}

async function handle(method: string, path: string): Promise<[number, unknown]> {
  const match = /^\/actors\/([\w-]+)(\/increment)?$/.exec(path)
  if (method === 'POST' && path === '/shutdown') {
    for (const db of actors.values()) await (await db).close()
    await depot.close()
    setImmediate(() => process.exit(0))
    return [200, { host: hostName, closed: true }]
  }
  if (!match) return [404, { error: 'no such route' }]
  const id = match[1]
  const db = await actor(id)
  try {
    if (method === 'POST' && match[2]) {
      await db.run('INSERT INTO counter(id, n) VALUES (1, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1')
    } else if (method !== 'GET' || match[2]) {
      return [405, { error: 'method not allowed' }]
    }
    return [200, { host: hostName, actor: id, count: await count(db) }]
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_FENCED') throw error
    // Another host opened this actor with a newer generation: it lives there now.
    actors.delete(id)
    await db.close().catch(() => {})
    return [409, { host: hostName, actor: id, error: 'ERR_FENCED', moved: true }]
  }
}

async function main(): Promise<void> {
  depot = await Depot.open({ url: option('url'), schema: option('schema', 'public') })
  const server = http.createServer((req, res) => {
    handle(req.method ?? 'GET', req.url ?? '/').then(
      ([status, body]) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      (error: Error) => res.writeHead(500).end(JSON.stringify({ error: error.message })),
    )
  })
  server.listen(Number(option('port', '0')), '127.0.0.1', () => {
    const address = server.address()
    console.log(JSON.stringify({ host: hostName, port: typeof address === 'object' && address ? address.port : 0 }))
  })
}

main().catch((error: Error) => {
  console.error(`${hostName}: ${error.message}`)
  process.exit(1)
})
