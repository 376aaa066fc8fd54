// Drives tests/fsserver.py with Google's own web client (firebase/firestore/lite
// over REST) and checks that what it reads back is what it wrote.
// Usage: node fidelity.mjs HOST PORT      (exit 0 = all assertions passed)
import { initializeApp } from 'firebase/app';
import { getAuth, connectAuthEmulator, signInAnonymously } from 'firebase/auth';
import {
  getFirestore, connectFirestoreEmulator, doc, collection, setDoc, getDoc,
  updateDoc, deleteDoc, addDoc, getDocs, query, where, limit, orderBy,
  writeBatch, runTransaction, Timestamp, Bytes, GeoPoint, serverTimestamp,
  increment, arrayUnion, arrayRemove, deleteField, getCount, setLogLevel
} from 'firebase/firestore/lite';

setLogLevel('silent');

const [host, port] = [process.argv[2] || '127.0.0.1', Number(process.argv[3])];
const app = initializeApp({ projectId: 'demo-fidelity', apiKey: 'fake-key' });
const db = getFirestore(app);
connectFirestoreEmulator(db, host, port);

let passed = 0;
function check(what, cond, detail) {
  if (!cond) {
    console.error(`FAIL: ${what}${detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`);
    process.exit(1);
  }
  passed++;
}
function eq(what, got, want) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  check(what, g === w, { got, want });
}
async function rejects(what, p, code) {
  try { await p; } catch (e) { eq(what + ' (code)', e.code, code); return e; }
  check(what + ' should have failed', false);
}

// 1. setDoc / getDoc with every value type.
const ts = new Timestamp(1700000000, 123456000);
const bytes = Bytes.fromUint8Array(new Uint8Array([0, 1, 2, 250, 255]));
const alice = doc(db, 'peers', 'alice');
await setDoc(alice, {
  int: 42, big: 9007199254740991, neg: -7, dbl: 3.25, whole: 2.0, bool: true,
  no: false, nil: null, ts, bytes, str: 'héllo ✓', geo: new GeoPoint(51.5, -0.12),
  map: { a: 1, nested: { b: 'x' }, empty: {} }, arr: [1, 'two', { three: 3 }, null],
  emptyArr: [], ref: doc(db, 'peers', 'bob'), tsNanos: new Timestamp(1700000000, 123456789),
  old: new Timestamp(-62135596800, 0)
});
let s = await getDoc(alice);
check('alice exists', s.exists());
let d = s.data();
eq('integer', d.int, 42);
eq('big integer', d.big, 9007199254740991);
eq('negative', d.neg, -7);
eq('double', d.dbl, 3.25);
eq('whole double', d.whole, 2);
eq('bool true', d.bool, true);
eq('bool false', d.no, false);
eq('null', d.nil, null);
check('timestamp type', d.ts instanceof Timestamp);
eq('timestamp seconds', d.ts.seconds, 1700000000);
eq('timestamp nanos', d.ts.nanoseconds, 123456000);
eq('timestamp stored rounded down to microseconds', d.tsNanos.nanoseconds, 123456000);
eq('timestamp year 1', d.old.seconds, -62135596800);
check('bytes type', d.bytes instanceof Bytes);
eq('bytes', Array.from(d.bytes.toUint8Array()), [0, 1, 2, 250, 255]);
eq('string', d.str, 'héllo ✓');
eq('geo', [d.geo.latitude, d.geo.longitude], [51.5, -0.12]);
eq('map', d.map, { a: 1, nested: { b: 'x' }, empty: {} });
eq('array', d.arr, [1, 'two', { three: 3 }, null]);
eq('empty array', d.emptyArr, []);
eq('reference', d.ref.path, 'peers/bob');
eq('snapshot id', s.id, 'alice');

// 2. updateDoc: dotted paths, deleteField, transforms.
await updateDoc(alice, { 'map.nested.b': 'y', int: increment(8), nil: deleteField(),
  arr: arrayUnion('two', 'four'), 'map.a': arrayRemove(1), when: serverTimestamp() });
d = (await getDoc(alice)).data();
eq('updated nested', d.map.nested, { b: 'y' });
eq('increment', d.int, 50);
check('deleteField', !('nil' in d));
eq('arrayUnion', d.arr, [1, 'two', { three: 3 }, null, 'four']);
eq('arrayRemove on non-array', d.map.a, []);
check('serverTimestamp', d.when instanceof Timestamp && Math.abs(d.when.toMillis() - Date.now()) < 60000, d.when);
eq('untouched field kept', d.str, 'héllo ✓');
await rejects('updateDoc on a missing document', updateDoc(doc(db, 'peers', 'nobody'), { x: 1 }), 'not-found');

// 3. setDoc with merge.
await setDoc(alice, { str: 'merged', extra: 1 }, { merge: true });
d = (await getDoc(alice)).data();
eq('merge kept int', d.int, 50);
eq('merge set str', d.str, 'merged');
eq('merge added', d.extra, 1);

// 4. addDoc: auto IDs.
const offers = collection(db, 'inbox', 'bob', 'offers');
const r1 = await addDoc(offers, { from: 'alice', seq: 1, to: 'bob' });
const r2 = await addDoc(offers, { from: 'carol', seq: 2, to: 'bob' });
await addDoc(offers, { from: 'dave', seq: 3, to: 'eve' });
check('auto id is 20 chars', /^[A-Za-z0-9]{20}$/.test(r1.id), r1.id);
check('auto ids differ', r1.id !== r2.id);
eq('subcollection path', r1.path, `inbox/bob/offers/${r1.id}`);
eq('addDoc readback', (await getDoc(r2)).data(), { from: 'carol', seq: 2, to: 'bob' });

// 5. Queries: where + limit, orderBy, empty result, count.
let qs = await getDocs(query(offers, where('to', '==', 'bob')));
eq('where == count', qs.size, 2);
eq('where == sorted by name', qs.docs.map(x => x.id), [r1.id, r2.id].sort());
qs = await getDocs(query(offers, where('to', '==', 'bob'), limit(1)));
eq('limit', qs.size, 1);
qs = await getDocs(query(offers, where('seq', '>', 1)));
eq('range filter', qs.docs.map(x => x.data().seq), [2, 3]);
qs = await getDocs(query(offers, orderBy('seq', 'desc'), limit(2)));
eq('orderBy desc + limit', qs.docs.map(x => x.data().seq), [3, 2]);
qs = await getDocs(query(offers, where('to', '==', 'nobody')));
check('empty query', qs.empty);
qs = await getDocs(query(offers, where('seq', 'in', [1, 3])));
eq('in filter', qs.docs.map(x => x.data().seq).sort(), [1, 3]);
eq('count aggregation', (await getCount(query(offers, where('to', '==', 'bob')))).data().count, 2);
qs = await getDocs(collection(db, 'inbox'));
check('parent of subcollection is not a document', qs.empty);
await rejects('query needing a composite index',
  getDocs(query(offers, where('to', '==', 'bob'), orderBy('seq'))), 'failed-precondition');

// 6. Batch: atomic; a failing write undoes the whole batch.
const b = writeBatch(db);
b.set(doc(db, 'peers', 'carol'), { n: 1 });
b.update(doc(db, 'peers', 'ghost'), { n: 2 });
await rejects('batch with a failing update', b.commit(), 'not-found');
check('batch left nothing behind', !(await getDoc(doc(db, 'peers', 'carol'))).exists());
const b2 = writeBatch(db);
b2.set(doc(db, 'peers', 'carol'), { n: 1 });
b2.update(doc(db, 'peers', 'carol'), { n: 2 });
b2.delete(r2);
await b2.commit();
eq('batch applied in order', (await getDoc(doc(db, 'peers', 'carol'))).data(), { n: 2 });
check('batch delete', !(await getDoc(r2)).exists());

// 7. Transactions (lite: optimistic, commit with preconditions / verify).
const n = await runTransaction(db, async (t) => {
  const c = await t.get(doc(db, 'peers', 'carol'));
  const a = await t.get(alice);
  t.update(doc(db, 'peers', 'carol'), { n: c.data().n + 1, seen: a.data().extra });
  return c.data().n + 1;
});
eq('transaction result', n, 3);
eq('transaction wrote', (await getDoc(doc(db, 'peers', 'carol'))).data(), { n: 3, seen: 1 });
await runTransaction(db, async (t) => {
  const g = await t.get(doc(db, 'peers', 'newbie'));
  check('transaction sees missing doc', !g.exists());
  t.set(doc(db, 'peers', 'newbie'), { made: true });
});
eq('transaction created', (await getDoc(doc(db, 'peers', 'newbie'))).data(), { made: true });

// 8. deleteDoc; deleting a missing document is not an error.
await deleteDoc(doc(db, 'peers', 'newbie'));
check('deleted', !(await getDoc(doc(db, 'peers', 'newbie'))).exists());
await deleteDoc(doc(db, 'peers', 'never-existed'));
passed++;

// 9. Big documents: just under and over 1 MiB.
const big = 'x'.repeat(1024 * 1024 - 200);
await setDoc(doc(db, 'big', 'ok'), { s: big });
eq('near-1MiB document', (await getDoc(doc(db, 'big', 'ok'))).data().s.length, big.length);
// The web SDK maps every HTTP 400 (INVALID_ARGUMENT included) to 'failed-precondition'.
const e = await rejects('over-1MiB document', setDoc(doc(db, 'big', 'no'), { s: big, t: 'y'.repeat(1000) }), 'failed-precondition');
check('over-1MiB message', /exceeds the maximum allowed size/.test(e.message), e.message);
check('over-1MiB not stored', !(await getDoc(doc(db, 'big', 'no'))).exists());

// 10. Auth emulator: anonymous sign-in (signUp + lookup), refresh (securetoken),
// and Firestore requiring the ID tokens it issued.
const ctl = async (path, body) => {
  const r = await fetch(`http://${host}:${port}/_test/${path}`, { method: 'POST', body: JSON.stringify(body) });
  eq(`control ${path}`, r.status, 200);
};
const app2 = initializeApp({ projectId: 'demo-fidelity', apiKey: 'fake-key' }, 'authed');
const auth = getAuth(app2);
connectAuthEmulator(auth, `http://${host}:${port}`, { disableWarnings: true });
const db2 = getFirestore(app2);
connectFirestoreEmulator(db2, host, port);
const cred = await signInAnonymously(auth);
check('anonymous user', cred.user.isAnonymous && /^[A-Za-z0-9]{28}$/.test(cred.user.uid), cred.user.uid);
const tok = await cred.user.getIdTokenResult();
eq('token claims: user_id', tok.claims.user_id, cred.user.uid);
eq('token sign-in provider', tok.signInProvider, 'anonymous');
await ctl('config', { auth: 'issued' });
await rejects('no token while auth is required', getDoc(alice), 'permission-denied');
eq('signed-in client reads', (await getDoc(doc(db2, 'peers', 'alice'))).data().str, 'merged');
await setDoc(doc(db2, 'peers', 'authed'), { uid: cred.user.uid });
await ctl('expire_tokens', {});
await rejects('expired token', getDoc(doc(db2, 'peers', 'authed')), 'unauthenticated');
const fresh = await cred.user.getIdToken(true);
check('refreshed token differs', fresh !== tok.token);
eq('refreshed token works', (await getDoc(doc(db2, 'peers', 'authed'))).data(), { uid: cred.user.uid });
await ctl('config', { auth: 'open' });

console.log(`fidelity: ${passed} assertions passed`);
process.exit(0);
