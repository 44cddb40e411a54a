// Drives confab with @stomp/stompjs, a third-party STOMP client, and exits 0 only if every
// check passes. Usage: node stompjs.mjs ws://127.0.0.1:PORT/ws
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { fail, register, wsUrl } from './common.mjs';

const url = wsUrl('stompjs.mjs');
// An account first: confab's STOMP CONNECT takes login + passcode (a session token).
const token = await register(url, 'stompjs');

const client = new Client({
  webSocketFactory: () => new WebSocket(url, ['v10.stomp', 'v11.stomp', 'v12.stomp']),
  connectHeaders: { login: 'stompjs', passcode: token, host: 'localhost' },
  heartbeatIncoming: 1000,
  heartbeatOutgoing: 1000,
  reconnectDelay: 0,
  debug: () => {},
});

const expectations = [];
const waitFor = (predicate, what) =>
  new Promise((resolve) => expectations.push({ predicate, resolve, what }));
const seen = (item) => {
  for (const expectation of expectations) {
    if (!expectation.done && expectation.predicate(item)) {
      expectation.done = true;
      expectation.resolve(item);
    }
  }
};

client.onStompError = (frame) => fail(`ERROR frame: ${frame.headers.message}`);
client.onWebSocketError = () => fail('websocket error');

client.onConnect = async (connected) => {
  try {
    if (connected.headers.version !== '1.2') fail(`negotiated ${connected.headers.version}, expected 1.2`);
    if (client.webSocket.protocol !== 'v12.stomp') fail(`subprotocol ${client.webSocket.protocol}`);

    // A generic topic: three messages, in order, with a user header passed through.
    const received = [];
    const allThree = waitFor(() => received.length === 3, 'three topic messages');
    client.subscribe('/topic/interop', (message) => {
      received.push(message);
      seen(message);
    });
    const receipt = new Promise((resolve) => client.watchForReceipt('sub-ok', resolve));
    client.subscribe('/topic/other', () => {}, { receipt: 'sub-ok' });
    await receipt;
    for (const n of [1, 2, 3]) {
      client.publish({ destination: '/topic/interop', body: `hello ${n}`, headers: { 'x-n': `${n}` } });
    }
    await allThree;
    received.forEach((message, index) => {
      if (message.body !== `hello ${index + 1}`) fail(`message ${index} body ${message.body}`);
      if (message.headers['x-n'] !== `${index + 1}`) fail(`message ${index} lost its user header`);
      if (!message.headers['message-id']) fail('no message-id');
    });

    // A chat room: the presence snapshot, then our own message stamped by the server, with
    // a receipt that arrives once it is stored.
    const roomEvents = [];
    const presence = waitFor((event) => event.type === 'presence', 'presence snapshot');
    const chat = waitFor((event) => event.type === 'message', 'chat message');
    client.subscribe('/topic/room.lobby', (message) => {
      const event = JSON.parse(message.body);
      roomEvents.push(event);
      seen(event);
    });
    const snapshot = await presence;
    if (!snapshot.users.includes('stompjs')) fail(`presence ${JSON.stringify(snapshot)}`);
    const stored = new Promise((resolve) => client.watchForReceipt('said', resolve));
    client.publish({
      destination: '/app/room.lobby',
      body: 'hi from stompjs',
      headers: { 'content-type': 'text/plain', receipt: 'said' },
    });
    const said = await chat;
    await stored;
    if (said.sender !== 'stompjs' || said.text !== 'hi from stompjs' || said.seq !== 1) fail(`chat ${JSON.stringify(said)}`);

    await client.deactivate();
    console.log(JSON.stringify({ ok: true, topic_messages: received.length, room_events: roomEvents.length }));
    process.exit(0);
  } catch (error) {
    fail(error.stack || String(error));
  }
};

client.activate();
