import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyValues, parseReplies, ReplyParser } from '../../../src/tor/control/index.js';

const fixture = (name: string): string =>
  readFileSync(join(import.meta.dirname, '../../fixtures/tor-control', name), 'utf8');

describe('reply framing (control-spec §2.3) on real tor 0.4.9.11 transcripts', () => {
  const session = fixture('session-cookie.txt');

  it('splits the cookie session into its replies', () => {
    const replies = parseReplies(session);
    expect(replies.map((r) => r.status)).toEqual([
      250, 250, 250, 250, 250, 250, 250, 250, 552, 512, 512, 552, 510, 250,
    ]);
    const [info, challenge] = replies;
    expect(info?.lines.map((l) => l.text)).toEqual([
      'PROTOCOLINFO 1',
      'AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/h1tor/data/control_auth_cookie"',
      'VERSION Tor="0.4.9.11"',
      'OK',
    ]);
    expect(challenge?.lines[0]?.text).toMatch(
      /^AUTHCHALLENGE SERVERHASH=[0-9A-F]{64} SERVERNONCE=[0-9A-F]{64}$/,
    );
    expect(replies[8]?.lines[0]).toEqual({
      status: 552,
      divider: ' ',
      text: 'Unrecognized key "no-such-key"',
    });
  });

  it('reads a 250+ data block whole, and GETINFO values up to the end of the line', () => {
    const replies = parseReplies(session);
    const configText = keyValues(replies[7]!).get('config-text');
    expect(configText?.split('\n')).toEqual([
      'ControlPort auto',
      'ControlPortWriteToFile /tmp/h1tor/data/control.port',
      'CookieAuthentication 1',
      'DataDirectory /tmp/h1tor/data',
      'DisableNetwork 1',
      'GeoIPFile /tmp/h1tor/geoip',
      'GeoIPv6File /tmp/h1tor/geoip',
      'Log notice stderr',
      'SocksPort auto',
    ]);
    expect(keyValues(replies[6]!).get('status/bootstrap-phase')).toBe(
      'NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"',
    );
  });

  it('keeps every "=" of a value (granax cut GETINFO values at the first "=")', () => {
    const [r] = parseReplies('250-PrivateKey=ED25519-V3:uGvM+/Fv==\r\n250-a=b=c\r\n250 OK\r\n');
    const kv = keyValues(r!);
    expect(kv.get('PrivateKey')).toBe('ED25519-V3:uGvM+/Fv==');
    expect(kv.get('a')).toBe('b=c');
  });

  it('un-stuffs dot-escaped data lines', () => {
    const [r] = parseReplies('250+x=\r\n..hidden\r\nplain\r\n.\r\n250 OK\r\n');
    expect(keyValues(r!).get('x')).toBe('.hidden\nplain');
  });

  it('gives the same replies however the bytes are chunked', () => {
    const whole = parseReplies(session);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: session.length }), { maxLength: 30 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const p = new ReplyParser();
        const got = [];
        let prev = 0;
        for (const c of [...points, session.length]) {
          got.push(...p.push(session.slice(prev, c)));
          prev = c;
        }
        expect(got).toEqual(whole);
        expect(p.idle).toBe(true);
      }),
    );
  });

  it('reports a malformed line as a protocol error quoting the raw text', () => {
    const p = new ReplyParser();
    expect(() => p.push('250-ok\r\nHTTP/1.0 400 Bad\r\n')).toThrow(
      expect.objectContaining({
        code: 'ERR_TOR_CONTROL_PROTOCOL',
        details: expect.objectContaining({ raw: expect.stringContaining('HTTP/1.0 400') }),
      }),
    );
  });

  it('refuses a transcript that stops mid-reply', () => {
    expect(() => parseReplies('250-a=b\r\n')).toThrow(
      expect.objectContaining({ code: 'ERR_TOR_CONTROL_PROTOCOL' }),
    );
  });

  it('parses the failed-auth transcripts', () => {
    expect(parseReplies(fixture('auth-bad-cookie.txt')).at(-1)).toMatchObject({ status: 515 });
    const pw = parseReplies(fixture('auth-bad-password.txt'));
    expect(pw[0]?.lines[1]?.text).toBe('AUTH METHODS=HASHEDPASSWORD');
    expect(pw.at(-1)?.lines[0]?.text).toMatch(/^Authentication failed: Password did not match/);
  });
});
