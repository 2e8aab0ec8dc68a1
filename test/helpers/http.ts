/**
 * Test helper: one HTTP request with its whole answer as text, for tests that speak raw HTTP to a server of
 * ours (headers or bodies a stock client would never send).
 * @module
 */
import { type RequestOptions, request } from 'node:http';

/** The status and the body of an HTTP answer. */
export interface HttpReply {
  status: number;
  body: string;
}

/** Sends `body` (if any) with `options` and resolves with the whole answer; a socket error rejects. */
export function httpText(options: RequestOptions, body?: string): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const r = request(options, (res) => {
      let text = '';
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    r.on('error', reject);
    r.end(body);
  });
}
