/**
 * A rate as a token bucket: refills `rate` tokens per second up to `capacity`. Previews arrive in
 * bursts (t -> c -> z order) and with jitter, so a rate is kept on average rather than enforced as a
 * minimum spacing that bursts would halve. Counted in bytes it is a bandwidth budget: a message
 * larger than a second's budget goes out, and the next waits until its debt is paid.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly capacity = 2,
    initial = 1,
    now = performance.now(),
  ) {
    this.tokens = initial;
    this.refilledAt = now;
  }

  /** Whether a token would be there at `rate` per second now (without refilling). */
  wouldHave(rate: number, now = performance.now()): boolean {
    return this.tokens + ((now - this.refilledAt) / 1000) * rate >= 1;
  }

  /** Refills at `rate` per second up to now; true when a whole token is there. */
  refill(rate: number, now = performance.now()): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.refilledAt) / 1000) * rate);
    this.refilledAt = now;
    return this.tokens >= 1;
  }

  /** Takes n tokens; more than there are leaves a debt that the refill pays first (a byte budget). */
  take(n = 1): void {
    this.tokens -= n;
  }
}
