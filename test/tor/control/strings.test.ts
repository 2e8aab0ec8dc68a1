import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readQuoted, splitArgs, tokenize } from '../../../src/tor/control/_strings.js';
import { quote } from '../../../src/tor/control/index.js';

describe('control-spec §2.1 strings', () => {
  it('unescapes C escapes, octal and hex', () => {
    const input = '"a\\"b\\\\c\\n\\t\\r\\101\\x42" rest';
    expect(readQuoted(input, 0)).toEqual({ value: 'a"b\\c\n\t\rAB', end: input.length - ' rest'.length });
  });

  it('rejects an unterminated string and a bad escape with a protocol error', () => {
    expect(() => readQuoted('"abc', 0)).toThrow(
      expect.objectContaining({ code: 'ERR_TOR_CONTROL_PROTOCOL' }),
    );
    expect(() => readQuoted('"a\\qb"', 0)).toThrow(
      expect.objectContaining({ code: 'ERR_TOR_CONTROL_PROTOCOL' }),
    );
  });

  it('quote → readQuoted round-trips any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const q = quote(s);
        expect(q).not.toMatch(/[\r\n]/);
        expect(readQuoted(q, 0)).toEqual({ value: s, end: q.length });
      }),
    );
  });

  it('splits positional words and keyword arguments, keeping "=" inside values', () => {
    // From GETINFO status/bootstrap-phase and PROTOCOLINFO, tor 0.4.9.11.
    expect(splitArgs('NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"')).toEqual({
      words: ['NOTICE', 'BOOTSTRAP'],
      kv: { PROGRESS: '0', TAG: 'starting', SUMMARY: 'Starting' },
    });
    expect(splitArgs('METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/a b/control_auth_cookie"').kv).toEqual({
      METHODS: 'COOKIE,SAFECOOKIE',
      COOKIEFILE: '/tmp/a b/control_auth_cookie',
    });
    expect(splitArgs('K=a=b=').kv).toEqual({ K: 'a=b=' });
  });

  it('keeps base64-like words positional when only upper-case keys count as keywords', () => {
    expect(tokenize('HS_DESC CREATED abc UNKNOWN UNKNOWN aGVsbG8= REASON=X', true)).toEqual([
      { word: 'HS_DESC' },
      { word: 'CREATED' },
      { word: 'abc' },
      { word: 'UNKNOWN' },
      { word: 'UNKNOWN' },
      { word: 'aGVsbG8=' },
      { key: 'REASON', value: 'X' },
    ]);
  });
});
