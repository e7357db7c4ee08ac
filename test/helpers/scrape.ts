/** Scraping a master's Prometheus endpoint over real HTTP. */
import assert from 'node:assert/strict';
import http from 'node:http';

export interface Scrape {
  contentType: string;
  text: string;
  /** `name{labels}` (exactly as exposed) → value. */
  values: Map<string, number>;
}

export function scrape(url: string): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, timeout: 5000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`GET ${url}: ${res.statusCode} ${text}`));
          const values = new Map<string, number>();
          for (const line of text.split('\n')) {
            if (!line || line.startsWith('#')) continue;
            const at = line.lastIndexOf(' ');
            values.set(line.slice(0, at), Number(line.slice(at + 1)));
          }
          resolve({ contentType: String(res.headers['content-type']), text, values });
        });
      })
      .on('error', reject);
  });
}

export function value(s: Scrape, key: string): number {
  const v = s.values.get(key);
  assert.notEqual(v, undefined, `metric ${key} is missing from:\n${s.text}`);
  return v!;
}
