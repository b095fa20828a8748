// The arithmetic of a rollout's judgement, pure: Prometheus's histogram quantile and the sums of histograms,
// and the confidence sequences and bounds the sequential tests and hard limits use.

/** Requests at or under `le` milliseconds, cumulative; the last bucket is `le: Infinity` (Prometheus's +Inf). */
export interface LatencyBucket {
    readonly le: number;
    readonly count: number;
}

/**
 * `histogram_quantile` as Prometheus computes it: the rank's bucket, linear within it, the lower edge of the first
 * bucket taken as 0, and a rank in the +Inf bucket answered with the highest finite bound. Undefined without data.
 */
export function histogramQuantile(q: number, buckets: readonly LatencyBucket[]): number | undefined {
    const total = buckets.at(-1)?.count ?? 0;
    if (total <= 0 || buckets.at(-1)?.le !== Infinity) return undefined;
    const rank = q * total;
    const index = buckets.findIndex((b) => b.count >= rank);
    if (index === buckets.length - 1) return buckets.length > 1 ? buckets[index - 1].le : undefined;
    const upper = buckets[index];
    const lowerEdge = index === 0 ? 0 : buckets[index - 1].le;
    const below = index === 0 ? 0 : buckets[index - 1].count;
    if (index === 0 && upper.le <= 0) return upper.le;
    const inBucket = upper.count - below;
    return inBucket <= 0 ? upper.le : lowerEdge + (upper.le - lowerEdge) * ((rank - below) / inBucket);
}

/** Requests slower than `le` (which must be one of the buckets' bounds). */
export function slowerThan(buckets: readonly LatencyBucket[], le: number): number {
    const total = buckets.at(-1)?.count ?? 0;
    const within = buckets.find((b) => b.le === le)?.count ?? total;
    return Math.max(0, total - within);
}

/** Sums two histograms over the same bounds (or either, when the other is empty). */
export function addBuckets(a: readonly LatencyBucket[], b: readonly LatencyBucket[]): LatencyBucket[] {
    if (a.length === 0) return [...b];
    if (b.length === 0) return [...a];
    const bounds = [...new Set([...a, ...b].map((x) => x.le))].sort((x, y) => x - y);
    // A bound one side lacks is read at its next bound up, as a cumulative histogram is.
    const at = (h: readonly LatencyBucket[], le: number) => h.find((x) => x.le >= le)?.count ?? h.at(-1)?.count ?? 0;
    return bounds.map((le) => ({ le, count: at(a, le) + at(b, le) }));
}

/** A rate from counts that is never 0 or 1 (Jeffreys' estimate), so a ratio against it stays finite. */
export function smoothedRate(events: number, trials: number): number {
    return (events + 0.5) / (trials + 1);
}

/**
 * A bound on the chance of `events` or more in `trials` at rate `rate` (Chernoff: exp(-trials * KL)); at most 1,
 * and never below the exact tail, so a check that fails when it is small fails less often than its level says.
 */
export function binomialUpperTail(events: number, trials: number, rate: number): number {
    if (trials <= 0 || events <= trials * rate) return 1;
    const observed = Math.min(1, events / trials);
    if (rate <= 0) return 0;
    // At an observed rate of 1 the second term is 0 (0 * log 0): the bound is rate^trials, the exact tail.
    const kl = (observed > 0 ? observed * Math.log(observed / rate) : 0) + (observed < 1 ? (1 - observed) * Math.log((1 - observed) / (1 - rate)) : 0);
    return Math.exp(-trials * kl);
}

const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];

/** log Γ(x) for x > 0 (Lanczos, g = 7: about 15 significant digits). */
export function logGamma(x: number): number {
    if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
    const z = x - 1;
    let sum = LANCZOS[0];
    for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i] / (z + i);
    const t = z + 7.5;
    return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

const logBeta = (a: number, b: number) => logGamma(a) + logGamma(b) - logGamma(a + b);

/**
 * The log of a test martingale for "the rate is p" after `events` in `trials`: the likelihood of a rate drawn
 * from Jeffreys' Beta(1/2, 1/2) mixture against that of p. Under p its expectation is 1 at every trial count, so
 * by Ville's inequality it ever reaches log(1 / alpha) with chance at most alpha.
 */
export function mixtureLogRatio(events: number, trials: number, p: number): number {
    const misses = Math.max(0, trials - events);
    const own = (events > 0 ? events * Math.log(p) : 0) + (misses > 0 ? misses * Math.log(1 - p) : 0);
    return logBeta(0.5 + events, 0.5 + misses) - logBeta(0.5, 0.5) - own;
}

/**
 * The lower end of a confidence sequence for a rate: the least p the mixture martingale has not ruled out at
 * level alpha, after `events` in `trials`. It holds at every trial count at once: the chance that the true rate
 * is ever below it is at most alpha. 0 when no rate can be ruled out from below.
 */
export function lowerConfidenceBound(events: number, trials: number, alpha: number): number {
    if (events <= 0 || trials <= 0) return 0;
    const bound = Math.log(1 / alpha);
    let [low, high] = [0, Math.min(1, events / trials)];
    if (mixtureLogRatio(events, trials, high) >= bound) return high;
    // Below the observed rate the martingale falls as p rises: bisect for where it crosses the bound.
    for (let i = 0; i < 60; i++) {
        const mid = (low + high) / 2;
        if (mixtureLogRatio(events, trials, mid) >= bound) low = mid;
        else high = mid;
    }
    return low;
}

/** The upper end of the same confidence sequence: the chance the true rate is ever above it is at most alpha. */
export function upperConfidenceBound(events: number, trials: number, alpha: number): number {
    if (trials <= 0) return 1;
    return 1 - lowerConfidenceBound(trials - events, trials, alpha);
}
