// What every interop script starts with: the server's address from the command line, a
// way to fail loudly, a deadline, and accounts.

/** The `ws://…/ws` address given on the command line; exits 2 without one. */
export const wsUrl = (script) => {
  const url = process.argv[2];
  if (!url) {
    console.error(`usage: node ${script} <ws-url>`);
    process.exit(2);
  }
  setTimeout(() => fail('timed out after 15 s'), 15000).unref();
  return url;
};

/** Prints why and exits 1. */
export const fail = (why) => {
  console.error(`FAIL: ${why}`);
  process.exit(1);
};

/** Registers `username` on the server behind `url`; resolves with a session token. */
export const register = async (url, username) => {
  const api = url.replace(/^ws/, 'http').replace(/\/ws$/, '/api');
  const response = await fetch(`${api}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'interop password' }),
  });
  if (response.status !== 201) fail(`register ${username}: ${response.status} ${await response.text()}`);
  return (await response.json()).token;
};
