// Listen fidelity: Google's own Node client (@google-cloud/firestore, whose
// onSnapshot speaks Listen over gRPC with @grpc/grpc-js) against a server
// named by HOST PORT: tests/fsserver.py or Google's Firestore emulator, so
// the two can be seen to agree.  Documents are written over REST; the SDK
// only listens, through a TCP proxy this script can cut to make it reconnect.
// Usage: node listen.mjs HOST PORT fsserver|emulator   (exit 0 = all passed)
import net from 'node:net';

const [host, port, mode] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const project = `demo-listen-${process.pid}-${Date.now()}`;
const root = `projects/${project}/databases/(default)/documents`;
let passed = 0;
function check(what, cond, detail) {
  if (!cond) {
    console.error(`FAIL (${mode}): ${what}${detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`);
    process.exit(1);
  }
  passed++;
}
function eq(what, got, want) {
  check(what, JSON.stringify(got) === JSON.stringify(want), { got, want });
}

// The proxy: every SDK connection goes through it; cut() breaks them all.
const sockets = new Set();
let away = false;       // while true, the SDK cannot reconnect
const proxy = net.createServer((c) => {
  if (away) { c.destroy(); return; }
  const u = net.connect(port, host);
  sockets.add(c); sockets.add(u);
  c.pipe(u); u.pipe(c);
  const gone = () => { c.destroy(); u.destroy(); sockets.delete(c); sockets.delete(u); };
  c.on('error', gone); u.on('error', gone); c.on('close', gone); u.on('close', gone);
});
await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
async function cut() {
  away = true;
  for (const s of sockets) s.destroy();
  sockets.clear();
  // fsserver: wait until it has seen the connection go, so what is written
  // next is not billed to a stream already dead.
  for (let i = 0; mode === 'fsserver' && i < 200 && (await ctl('listen')).streams.length; i++) await sleep(25);
}
process.env.FIRESTORE_EMULATOR_HOST = `127.0.0.1:${proxy.address().port}`;
const { Firestore, Timestamp, GeoPoint } = await import('@google-cloud/firestore');
const db = new Firestore({ projectId: project });

async function rest(method, path, body) {
  const r = await fetch(`http://${host}:${port}${path}`, {
    method, headers: { authorization: 'Bearer owner', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : {};
}
const put = (path, fields) => rest('PATCH', `/v1/${root}/${path}`, { fields });
const del = (path) => rest('DELETE', `/v1/${root}/${path}`);
const ctl = (path, body) => rest(body === undefined ? 'GET' : 'POST', `/_test/${path}`, body);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A listener that records every snapshot: ids, changes, data.
function watch(ref) {
  const w = { snaps: [], errors: [] };
  w.stop = ref.onSnapshot((s) => w.snaps.push({
    ids: s.docs.map((d) => d.id),
    changes: s.docChanges().map((c) => `${c.type}:${c.doc.id}`),
    data: Object.fromEntries(s.docs.map((d) => [d.id, d.data()]))
  }), (e) => w.errors.push(String(e)));
  w.until = async (what, pred, ms = 20000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const s = w.snaps.find(pred);
      if (s) return s;
      await sleep(25);
    }
    check(`${what} (snapshots: ${JSON.stringify(w.snaps.map((s) => s.changes))}, errors: ${w.errors})`, false);
  };
  w.changesSince = (i) => w.snaps.slice(i).flatMap((s) => s.changes).sort();
  return w;
}
function plain(v) {
  if (v instanceof Timestamp) return { seconds: v.seconds, nanos: v.nanoseconds };
  if (v instanceof GeoPoint) return [v.latitude, v.longitude];
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v && typeof v.path === 'string' && typeof v.firestore === 'object') return v.path;
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}
const I = (n) => ({ integerValue: String(n) });
const S = (s) => ({ stringValue: s });

// 1. The initial snapshot, every value kind through the protobuf encoding.
await put('offers/a', {
  i: I(-42), big: I('9007199254740991'), d: { doubleValue: 2.5 }, t: { booleanValue: true },
  f: { booleanValue: false }, n: { nullValue: null }, s: S('héllo ✓'), by: { bytesValue: 'AAH6/w==' },
  ts: { timestampValue: '2024-01-02T03:04:05.123456Z' }, geo: { geoPointValue: { latitude: 51.5, longitude: -0.12 } },
  ref: { referenceValue: `${root}/peers/bob` }, arr: { arrayValue: { values: [I(1), S('two')] } },
  ea: { arrayValue: {} }, m: { mapValue: { fields: { k: { mapValue: { fields: { x: I(1) } } } } } }, em: { mapValue: {} }
});
await put('offers/b', { n: I(2) });
const offers = db.collection('offers');
let w = watch(offers);
let s = await w.until('initial snapshot', () => true);
eq('initial snapshot: documents', s.ids, ['a', 'b']);
eq('initial snapshot: all added', s.changes, ['added:a', 'added:b']);
eq('every value kind', plain(s.data.a), {
  i: -42, big: 9007199254740991, d: 2.5, t: true, f: false, n: null, s: 'héllo ✓', by: 'AAH6/w==',
  ts: { seconds: 1704164645, nanos: 123456000 }, geo: [51.5, -0.12], ref: 'peers/bob', arr: [1, 'two'],
  ea: [], m: { k: { x: 1 } }, em: {}
});

// 2. Adds, updates and deletes, one snapshot each.
let n = w.snaps.length;
await put('offers/c', { n: I(3) });
s = await w.until('add', (x) => x.changes.includes('added:c'));
eq('add: one change', s.changes, ['added:c']);
eq('add: snapshot', s.ids, ['a', 'b', 'c']);
await del('offers/a');
s = await w.until('delete', (x) => x.changes.includes('removed:a'));
eq('delete: one change', s.changes, ['removed:a']);
await put('offers/b', { n: I(20) });
s = await w.until('update', (x) => x.changes.includes('modified:b'));
eq('update: one change', s.changes, ['modified:b']);
eq('update: data', s.data.b, { n: 20 });
eq('one snapshot per write', w.snaps.length - n, 3);

// 3. A listener started on an empty collection.
const e = watch(db.collection('empty'));
s = await e.until('empty snapshot', () => true);
eq('empty collection: an empty first snapshot', [s.ids, s.changes], [[], []]);
await put('empty/x', { n: I(1) });
s = await e.until('first document', (x) => x.ids.length === 1);
eq('empty collection: then the add', s.changes, ['added:x']);
e.stop();

// 4. Reconnect and resume: the connection breaks, documents change while the
// SDK is away; it comes back and sees exactly what changed.
const logSeq = mode === 'fsserver' ? (await ctl('log')).requests.at(-1).seq : 0;
n = w.snaps.length;
await cut();
await put('offers/d', { n: I(4) });
await del('offers/b');
away = false;
s = await w.until('resume after a deletion', (x) => x.ids.join() === 'c,d');
eq('resume: what changed while away', w.changesSince(n), ['added:d', 'removed:b']);
n = w.snaps.length;
await cut();
await put('offers/e', { n: I(5) });
away = false;
s = await w.until('resume after an add', (x) => x.ids.join() === 'c,d,e');
eq('resume: only the add', w.changesSince(n), ['added:e']);

if (mode === 'fsserver') {
  // The server's view: the first resume is told of the deletion by the
  // existence filter and re-listens in full; the second costs one read.
  const ev = (await ctl(`log?since=${logSeq}`)).requests
    .filter((r) => r.op === 'Listen' && r.event !== 'end')
    .map((r) => `${r.event}:${r.reads}`);
  eq('fsserver billing: resume (1 read), full re-listen after the filter (2), resume (1)', ev,
    ['token:1', 'add:2', 'token:1']);
  // Its own fault switches: a stream ended UNAVAILABLE, then one reset.
  for (const fault of [{ action: 'status', code: 14 }, { action: 'rst' }, { action: 'goaway' }]) {
    n = w.snaps.length;
    eq(`fault ${fault.action}: one stream`, (await ctl('listen', fault)).streams, 1);
    const id = `after-${fault.action}`;
    await put(`offers/${id}`, { n: I(6) });
    await w.until(`resumes after ${fault.action}`, (x) => x.ids.includes(id));
    eq(`after ${fault.action}: the add, once`, w.changesSince(n), [`added:${id}`]);
  }
}
check('no listener error', w.errors.length === 0, w.errors);
w.stop();
await db.terminate();
proxy.close();
console.log(`listen fidelity (${mode}): ${passed} assertions passed`);
process.exit(0);
