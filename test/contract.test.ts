/**
 * The breaking-change check `npm run lint` runs (and so `npm test`): buf
 * breaking against contract/released.binpb, the proto as last released. The
 * current proto passes; a copy with a retyped field and a removed RPC fails,
 * naming both.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, tempDir } from './helpers/paths.js';

const BUF = path.join(ROOT, 'node_modules', '.bin', 'buf');
const RELEASED = path.join(ROOT, 'contract', 'released.binpb');

function bufBreaking(input: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(BUF, ['breaking', input, '--against', RELEASED], { cwd: input, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

test('buf breaking: the proto keeps the released contract; a breaking edit is caught', async () => {
  const current = await bufBreaking(ROOT);
  assert.equal(current.code, 0, current.output);

  const copy = tempDir();
  fs.cpSync(path.join(ROOT, 'proto'), path.join(copy, 'proto'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'buf.yaml'), path.join(copy, 'buf.yaml'));
  const file = path.join(copy, 'proto', 'liveswap', 'v1', 'liveswap.proto');
  const proto = fs.readFileSync(file, 'utf8');
  const broken = proto
    .replace('optional int32 exit_code = 9;', 'optional int64 exit_code = 9;')
    .replace(/\n\s*rpc Kill\(KillRequest\) returns \(KillResponse\);/, '');
  assert.notEqual(broken, proto);
  fs.writeFileSync(file, broken);
  const result = await bufBreaking(copy);
  assert.notEqual(result.code, 0);
  assert.match(result.output, /Field "9" with name "exit_code" on message "Worker" changed type from "int32" to "int64"/);
  assert.match(result.output, /Previously present RPC "Kill" on service "LiveswapService" was deleted/);
});
