/**
 * TLS and mTLS on TCP control, with certificates made by openssl at test
 * time: round trips through connect() and the CLI, the token still required
 * under TLS, and under mTLS a client without a certificate (or with one from
 * another CA) refused.
 */
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from 'liveswap';
import { makeCerts } from './helpers/certs.js';
import { expectGrpcError } from './helpers/grpc.js';
import { freePort } from './helpers/net.js';
import { fixture } from './helpers/paths.js';
import { runCli, startMaster } from './helpers/processes.js';

const certs = makeCerts();

test('TLS: connect() and the CLI trust the CA; a plain-text client gets nowhere; the token is still required', async (t) => {
  const appPort = await freePort();
  const master = await startMaster(fixture('v1.js'), {
    tcp: true,
    forks: 1,
    env: { APP_PORT: String(appPort) },
    args: ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey],
    clientOptions: { tls: { ca: certs.ca } },
  });
  t.after(() => master.stop());
  assert.match(master.stderr(), /control service listening on 127\.0\.0\.1:\d+ \(TLS, token in /);

  const status1 = await master.client.status();
  assert.equal(status1.generation, 1);
  const upgraded = await master.client.upgrade({ target: fixture('v2.js') });
  assert.equal(upgraded.generation, 2);

  const cli = await runCli(['--status', '--json', ...master.via, '--tls-ca', certs.ca]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(JSON.parse(cli.stdout).generation, 2);

  // Without TLS the client cannot talk to it; without the CA it does not trust it.
  const plain = await runCli(['--status', ...master.via]);
  assert.equal(plain.code, 3, plain.stderr);
  assert.match(plain.stderr, /^liveswap: no master at 127\.0\.0\.1:\d+ \(the connection failed during set-up: check --tls-ca, --tls-cert and --tls-key against the master's TLS settings\)\n$/);
  const untrusted = connect({ port: master.port, tls: true, deadlineMs: 5000 });
  t.after(() => untrusted.close());
  await expectGrpcError(untrusted.status(), status.UNAVAILABLE, /\(the master's TLS certificate is not trusted: give its CA with --tls-ca\)$/);
  const wrongName = await runCli(['--status', ...master.via, '--tls-ca', certs.ca, '--tls-server-name', 'example.com']);
  assert.equal(wrongName.code, 3);
  assert.match(wrongName.stderr, /\(the master's TLS certificate is for another name: connect to that name or give it with --tls-server-name\)\n$/);

  // TLS does not replace the token.
  const noToken = connect({ port: master.port, tls: { ca: certs.ca }, token: 'not-the-token' });
  t.after(() => noToken.close());
  await expectGrpcError(noToken.status(), status.UNAUTHENTICATED, /^wrong token/);
});

test('mTLS: a client certificate from the CA is required', async (t) => {
  const appPort = await freePort();
  const withCert = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
  const master = await startMaster(fixture('v1.js'), {
    tcp: true,
    forks: 1,
    env: { APP_PORT: String(appPort) },
    args: ['--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.ca],
    clientOptions: { tls: withCert },
  });
  t.after(() => master.stop());
  assert.match(master.stderr(), /control service listening on 127\.0\.0\.1:\d+ \(mTLS, token in /);

  assert.equal((await master.client.broadcast({ hello: 'mtls' })).delivered, 1);
  const watch = master.client.watch();
  assert.equal((await watch.next()).value?.event?.$case, 'snapshot');
  await watch.return();
  const cli = await runCli(['-m', 'hi', ...master.via, '--tls-ca', certs.ca, '--tls-cert', certs.clientCert, '--tls-key', certs.clientKey]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /delivered to 1 worker\(s\)/);

  const noCert = connect({ port: master.port, tls: { ca: certs.ca }, deadlineMs: 5000 });
  const stranger = connect({ port: master.port, tls: { ca: certs.ca, cert: certs.strangerCert, key: certs.strangerKey }, deadlineMs: 5000 });
  t.after(() => {
    noCert.close();
    stranger.close();
  });
  // With TLS 1.3 the client finishes its side of the handshake before the
  // master checks the certificate, so which reason the client sees depends on
  // whether the master's alert arrives before the connection is dropped: the
  // precise one, or the generic set-up failure. Either way: refused, one line,
  // a hint at the TLS options, nothing done.
  const refusedForCertificate =
    /\((the master requires a client certificate: give --tls-cert and --tls-key|the connection failed during set-up: check --tls-ca, --tls-cert and --tls-key against the master's TLS settings|the connection was reset during TLS set-up: does the master require a client certificate \(--tls-cert, --tls-key\), or not trust yours\?)\)$/;
  await expectGrpcError(noCert.status(), status.UNAVAILABLE, refusedForCertificate);
  await expectGrpcError(stranger.status(), status.UNAVAILABLE, /\(the connection failed during set-up: check --tls-ca, --tls-cert and --tls-key|the master refused the client certificate|the connection was reset during TLS set-up/);
  const cliNoCert = await runCli(['-d', ...master.via, '--tls-ca', certs.ca]);
  assert.equal(cliNoCert.code, 3, cliNoCert.stderr);
  assert.equal(cliNoCert.stderr.split('\n').length, 2, cliNoCert.stderr);
  assert.match(cliNoCert.stderr.trimEnd(), new RegExp(`^liveswap: no master at 127\\.0\\.0\\.1:${master.port} `));
  assert.match(cliNoCert.stderr.trimEnd(), refusedForCertificate);
  assert.equal((await master.client.status()).counts!.ready, 1, 'the refused -d stopped nothing');
});
