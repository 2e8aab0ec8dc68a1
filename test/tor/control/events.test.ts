import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEvent, parseReplies } from '../../../src/tor/control/index.js';

const transcript = readFileSync(
  join(import.meta.dirname, '../../fixtures/tor-control/session-password-events.txt'),
  'utf8',
);

describe('asynchronous events (control-spec §4.1) from a real tor 0.4.9.11', () => {
  const events = parseReplies(transcript)
    .filter((r) => r.status === 650)
    .map(parseEvent);

  it('parses STATUS_CLIENT bootstrap problems with quoted values', () => {
    const status = events.find((e) => e.type === 'STATUS_CLIENT');
    expect(status).toMatchObject({
      type: 'STATUS_CLIENT',
      severity: 'WARN',
      action: 'BOOTSTRAP',
      args: {
        PROGRESS: '5',
        TAG: 'conn',
        SUMMARY: 'Connecting to a relay',
        WARNING: 'Connection refused',
        RECOMMENDATION: 'warn',
        HOSTADDR: '127.0.0.1:1',
      },
    });
  });

  it('parses STREAM events with their positional fields', () => {
    expect(events.find((e) => e.type === 'STREAM')).toMatchObject({
      type: 'STREAM',
      id: '48',
      status: 'NEW',
      circuitId: '0',
      target: '127.0.0.1.$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB.exit:1',
      args: { PURPOSE: 'DIR_FETCH', SESSION_GROUP: '-2' },
    });
    expect(
      events.filter((e) => e.type === 'STREAM').map((e) => (e.type === 'STREAM' ? e.status : '')),
    ).toEqual(['NEW', 'FAILED', 'CLOSED', 'NEW', 'FAILED', 'CLOSED']);
  });

  it('parses CIRC with and without a path', () => {
    // Line from a tor 0.4.9.11 capture; the second adds a path as control-spec §4.1.1 shows.
    const launched = parseEvent(
      parseReplies(
        '650 CIRC 1 LAUNCHED BUILD_FLAGS=ONEHOP_TUNNEL,IS_INTERNAL,NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-11-21T23:07:07.466179\r\n',
      )[0]!,
    );
    expect(launched).toMatchObject({
      type: 'CIRC',
      id: '1',
      status: 'LAUNCHED',
      args: { PURPOSE: 'GENERAL' },
    });
    expect(launched).not.toHaveProperty('path');
    const built = parseEvent(parseReplies('650 CIRC 7 BUILT $AAAA~a,$BBBB~b PURPOSE=HS_CLIENT_REND\r\n')[0]!);
    expect(built).toMatchObject({ type: 'CIRC', path: ['$AAAA~a', '$BBBB~b'] });
  });

  it('parses HS_DESC (shape from control-spec §4.1.25 and the testnet notes)', () => {
    const id = 'em6zsfkbyavrzgwgbojygfy5yuasjqyglylf7l33uzxheeny44c6h5qd';
    expect(parseEvent(parseReplies(`650 HS_DESC UPLOADED ${id} UNKNOWN $AB12~relay1\r\n`)[0]!)).toEqual({
      type: 'HS_DESC',
      action: 'UPLOADED',
      address: id,
      authType: 'UNKNOWN',
      hsDir: '$AB12~relay1',
      args: {},
      raw: `650 HS_DESC UPLOADED ${id} UNKNOWN $AB12~relay1`,
    });
    const created = parseEvent(
      parseReplies(`650 HS_DESC CREATED ${id} UNKNOWN UNKNOWN aGVsbG8= REASON=X\r\n`)[0]!,
    );
    expect(created).toMatchObject({ action: 'CREATED', descriptorId: 'aGVsbG8=', reason: 'X' });
    expect(created).not.toHaveProperty('hsDir');
  });

  it('leaves other events unparsed and rejects a known event missing fields', () => {
    expect(parseEvent(parseReplies('650 BW 10 20\r\n')[0]!)).toEqual({
      type: 'UNKNOWN',
      name: 'BW',
      raw: '650 BW 10 20',
    });
    expect(() => parseEvent(parseReplies('650 STREAM 5 NEW\r\n')[0]!)).toThrow(
      expect.objectContaining({ code: 'ERR_TOR_CONTROL_PROTOCOL' }),
    );
  });
});
