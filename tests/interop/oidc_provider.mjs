// A third-party OpenID provider for the federation interop test (tests/it/upstream/interop.rs):
// panva's oidc-provider (npm), installed by scripts/interop-setup.sh. It listens on a free
// loopback port, prints "listening PORT", and serves one confidential client whose ID tokens
// are signed with ES256 and which authenticates with client_secret_post. Its development login accepts any login name (the account id) and
// any password; an account's email is NAME@kommun.se, said to be verified.
//
//   PORTVAKT_NODE_MODULES: where oidc-provider is installed.
//   CLIENT_ID, CLIENT_SECRET, REDIRECT_URI: the client (Portvakt's callback).
import http from 'node:http';
import crypto from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// ES modules ignore NODE_PATH: the package is imported from the folder the setup made.
const modules = process.env.PORTVAKT_NODE_MODULES ?? '/var/tmp/portvakt-node/node_modules';
const { default: Provider } = await import(
  pathToFileURL(path.join(modules, 'oidc-provider', 'lib', 'index.js')).href
);

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};

const jwk = (type, opts, alg, kid) => ({
  ...crypto.generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }),
  alg,
  kid,
  use: 'sig',
});

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: env('CLIENT_ID'),
      client_secret: env('CLIENT_SECRET'),
      redirect_uris: [env('REDIRECT_URI')],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'client_secret_post',
    }],
    jwks: {
      keys: [
        jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rsa-1'),
        jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'ec-1'),
      ],
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // CONFORM=1: scope claims only at userinfo (the library's default), else in the ID
    // token too.
    conformIdTokenClaims: process.env.CONFORM === '1',
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@kommun.se`, email_verified: true };
        },
      };
    },
    pkce: { required: () => true },
    // Only client_secret_post, so Portvakt must pick it from the discovery document.
    clientAuthMethods: ['client_secret_post'],
    features: { devInteractions: { enabled: true } },
  });
  server.on('request', provider.callback());
  console.log(`listening ${port}`);
});
