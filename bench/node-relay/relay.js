#!/usr/bin/env node
// A minimal WebSocket relay speaking the subset of Salon protocol v1 that bench/signaling.py
// uses: hello -> welcome{id}, join -> joined{members} (+ member_joined to the others),
// signal -> parse, stamp `from`, forward to the target in the same room. It is the baseline
// for "messages per server CPU-second"; it deliberately does no schema validation, no rate
// limiting and no outbox bounds, so it is a lower bound on the work a relay has to do.
//
// Usage: node relay.js --port 9000 [--host 127.0.0.1]
'use strict';

const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('host', '127.0.0.1');
const port = Number(arg('port', '9000'));
const MAX_ROOM = 8;

const rooms = new Map(); // room id -> Map(member id -> client)

function send(client, obj) {
  client.ws.send(JSON.stringify(obj));
}

function error(client, code, message, ref) {
  send(client, { type: 'error', code, message, ref: ref ?? null });
}

function leave(client) {
  const room = client.room;
  if (room === null) return;
  const members = rooms.get(room);
  client.room = null;
  if (!members) return;
  members.delete(client.id);
  if (members.size === 0) {
    rooms.delete(room);
    return;
  }
  const text = JSON.stringify({ type: 'member_left', room, id: client.id });
  for (const other of members.values()) other.ws.send(text);
}

const wss = new WebSocketServer({ host, port, path: '/ws', perMessageDeflate: false, maxPayload: 64 * 1024 });

wss.on('connection', (ws) => {
  const client = { ws, id: crypto.randomBytes(9).toString('base64url'), name: '', room: null };

  ws.on('message', (data, isBinary) => {
    if (isBinary) return error(client, 'binary_unsupported', 'frames are JSON text, not binary');
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return error(client, 'bad_json', 'the frame is not valid JSON');
    }
    if (msg === null || typeof msg !== 'object') return error(client, 'bad_message', 'a message is a JSON object');
    switch (msg.type) {
      case 'signal': {
        const members = client.room === null ? undefined : rooms.get(client.room);
        const target = members && msg.to !== client.id ? members.get(msg.to) : undefined;
        if (!target) return error(client, 'no_such_member', 'no such member in your room', msg.ref);
        target.ws.send(
          JSON.stringify({
            type: 'signal',
            from: client.id,
            description: msg.description ?? null,
            candidate: msg.candidate ?? null,
          }),
        );
        return;
      }
      case 'hello':
        client.name = String(msg.name ?? '');
        return send(client, {
          type: 'welcome',
          version: 1,
          id: client.id,
          name: client.name,
          ice_servers: [],
          resume_token: crypto.randomBytes(24).toString('base64url'),
        });
      case 'join': {
        const room = String(msg.room ?? '');
        let members = rooms.get(room);
        if (members && members.size >= MAX_ROOM) return error(client, 'room_full', 'this room is full', msg.ref);
        leave(client);
        if (!members) {
          members = new Map();
          rooms.set(room, members);
        }
        const media = { mic: false, camera: false, screen: false };
        const present = [...members.values()].map((m) => ({ id: m.id, name: m.name, polite: true, media }));
        members.set(client.id, client);
        client.room = room;
        send(client, { type: 'joined', room, private: false, members: present, history: [], last_seq: 0 });
        const text = JSON.stringify({
          type: 'member_joined',
          room,
          member: { id: client.id, name: client.name, polite: false, media },
        });
        for (const other of members.values()) if (other !== client) other.ws.send(text);
        return;
      }
      case 'leave': {
        const room = client.room;
        if (room === null) return error(client, 'not_joined', 'you are not in a room', msg.ref);
        leave(client);
        return send(client, { type: 'left', room });
      }
      case 'ping':
        return send(client, { type: 'pong', ref: msg.ref ?? null });
      default:
        return error(client, 'unknown_type', 'the message type is missing or unknown', msg.ref);
    }
  });

  ws.on('close', () => leave(client));
  ws.on('error', () => {});
});

wss.on('listening', () => {
  console.log(`node relay listening on ws://${host}:${port}/ws`);
});

function stop() {
  wss.close();
  for (const ws of wss.clients) ws.terminate();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
