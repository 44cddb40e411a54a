// Clients written for the original Spring design, against confab started with
// `--app-prefix /pub --broker-prefix /sub`: a stompjs client on /pub and /sub, one on /app
// and /topic, and a plain JSON WebSocket on /room, all in the lobby. Exits 0 only if every
// check passes. Usage: node spring.mjs ws://127.0.0.1:PORT/ws
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { fail, register, wsUrl } from './common.mjs';

const url = wsUrl('spring.mjs');

// Resolves with the first item `predicate` accepts, of those `source` is later given.
const inbox = () => {
  const waiting = [];
  const seen = [];
  return {
    push(item) {
      seen.push(item);
      for (const w of waiting) if (!w.done && w.predicate(item)) { w.done = true; w.resolve(item); }
    },
    next(predicate, what) {
      const earlier = seen.find(predicate);
      if (earlier) return Promise.resolve(earlier);
      return new Promise((resolve) => waiting.push({ predicate, resolve, what }));
    },
  };
};

// A stompjs client subscribed to a room and a generic destination; resolves once both are.
const stomp = (login, token, roomDestination, genericDestination) =>
  new Promise((resolve) => {
    const room = inbox();
    const generic = inbox();
    const client = new Client({
      webSocketFactory: () => new WebSocket(url, ['v12.stomp']),
      connectHeaders: { login, passcode: token },
      reconnectDelay: 0,
      debug: () => {},
    });
    client.onStompError = (frame) => fail(`${login}: ERROR ${frame.headers.message}`);
    client.onConnect = () => {
      client.subscribe(roomDestination, (message) => room.push(JSON.parse(message.body)));
      client.subscribe(genericDestination, (message) => generic.push(message.body), { receipt: `${login}-sub` });
      client.watchForReceipt(`${login}-sub`, () => resolve({ client, room, generic }));
    };
    client.activate();
  });

try {
  const [springToken, plainToken, jsonToken] = await Promise.all(
    ['springer', 'plainer', 'jsoner'].map((name) => register(url, name)),
  );
  const spring = await stomp('springer', springToken, '/sub/room.lobby', '/sub/greetings');
  const plain = await stomp('plainer', plainToken, '/topic/room.lobby', '/topic/greetings');

  // The original first stage: JSON over a bare WebSocket.
  const json = inbox();
  const socket = new WebSocket(`${url.replace(/\/ws$/, '/room')}?token=${jsonToken}&room=lobby`);
  socket.on('message', (data) => json.push(JSON.parse(data.toString())));
  socket.on('error', (error) => fail(`json socket: ${error}`));
  await new Promise((resolve) => socket.on('open', resolve));
  await spring.room.next((event) => event.type === 'joined' && event.user === 'jsoner', 'jsoner joins');

  // /pub reaches /topic and /sub subscribers, and the JSON client.
  spring.client.publish({ destination: '/pub/room.lobby', body: 'from pub' });
  for (const [who, client] of [['springer', spring], ['plainer', plain]]) {
    const said = await client.room.next((event) => event.type === 'message' && event.text === 'from pub');
    if (said.sender !== 'springer') fail(`${who} saw ${JSON.stringify(said)}`);
  }
  const toJson = await json.next((message) => message.type === 'message' && message.data === 'from pub');
  if (toJson.sender !== 'springer' || toJson.receiver !== 'all' || !toJson.seq) fail(`json saw ${JSON.stringify(toJson)}`);

  // /app reaches /sub.
  plain.client.publish({ destination: '/app/room.lobby', body: 'from app' });
  await spring.room.next((event) => event.type === 'message' && event.text === 'from app');

  // The JSON client reaches both.
  socket.send(JSON.stringify({ type: 'message', receiver: 'all', data: 'from json' }));
  for (const client of [spring, plain]) {
    const said = await client.room.next((event) => event.type === 'message' && event.text === 'from json');
    if (said.sender !== 'jsoner') fail(`saw ${JSON.stringify(said)}`);
  }

  // Generic destinations, both ways.
  plain.client.publish({ destination: '/topic/greetings', body: 'hello sub' });
  spring.client.publish({ destination: '/sub/greetings', body: 'hello topic' });
  await spring.generic.next((body) => body === 'hello sub');
  await plain.generic.next((body) => body === 'hello topic');

  // Leaving is announced to the JSON client as `close`.
  await plain.client.deactivate();
  await json.next((message) => message.type === 'close' && message.sender === 'plainer');

  await spring.client.deactivate();
  socket.close();
  console.log(JSON.stringify({ ok: true }));
  process.exit(0);
} catch (error) {
  fail(error.stack || String(error));
}
