// Simulated traffic for rollouts, to measure decision rules on it: Poisson arrivals at a request rate, each
// version's error rate and log-normal latency, recorded as Istio records them (5xx counts and its default
// duration buckets). The traffic is cut into fixed segments of the user base (as a hash of the user would),
// so every algorithm that routes the same percent to the candidate sees the very same requests, whatever it
// did before: two algorithms run on one stream are compared on shared traffic.
import type { VersionCounts } from "./analysis";
import type { LatencyBucket } from "./statistics";

/** A small, fast, seedable generator (sfc32 seeded through splitmix32): the same seed, the same traffic. */
export class Random {
    private a: number;
    private b: number;
    private c: number;
    private d: number;

    constructor(seed: number) {
        let s = seed >>> 0;
        const next = () => {
            s = (s + 0x9e3779b9) >>> 0;
            let z = s;
            z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
            z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
            return (z ^ (z >>> 16)) >>> 0;
        };
        this.a = next();
        this.b = next();
        this.c = next();
        this.d = next();
    }

    /** Uniform in (0, 1). */
    next(): number {
        const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
        this.d = (this.d + 1) >>> 0;
        this.a = this.b ^ (this.b >>> 9);
        this.b = (this.c + (this.c << 3)) >>> 0;
        this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
        this.c = (this.c + t) >>> 0;
        return (t + 0.5) / 4294967296;
    }
}

const LOG_FACTORIAL = Array.from({ length: 10 }, (_, k) => Array.from({ length: k }, (_, i) => Math.log(i + 1)).reduce((a, b) => a + b, 0));

/** log(k!), exact below 10 and by Stirling's series above (error under 1e-10). */
function logFactorial(k: number): number {
    if (k < 10) return LOG_FACTORIAL[k];
    const n = k + 1;
    return (n - 0.5) * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * n) - 1 / (360 * n ** 3);
}

/** A Poisson draw: by inversion for small means, by Hörmann's transformed rejection (PTRS) for large ones. */
export function poisson(mean: number, random: Random): number {
    if (mean <= 0) return 0;
    if (mean < 10) {
        let k = 0;
        let p = Math.exp(-mean);
        let cumulative = p;
        const u = random.next();
        while (u > cumulative && k < 1000) {
            k++;
            p *= mean / k;
            cumulative += p;
        }
        return k;
    }
    const root = Math.sqrt(mean);
    const logMean = Math.log(mean);
    const b = 0.931 + 2.53 * root;
    const a = -0.059 + 0.02483 * b;
    const inverseAlpha = 1.1239 + 1.1328 / (b - 3.4);
    const vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
        const u = random.next() - 0.5;
        const v = random.next();
        const us = 0.5 - Math.abs(u);
        const k = Math.floor(((2 * a) / us + b) * u + mean + 0.43);
        if (us >= 0.07 && v <= vr) return k;
        if (k < 0 || (us < 0.013 && v > us)) continue;
        if (Math.log(v) + Math.log(inverseAlpha) - Math.log(a / (us * us) + b) <= -mean + k * logMean - logFactorial(k)) return k;
    }
}

/** The standard normal distribution function (Abramowitz and Stegun 26.2.17, error under 7.5e-8). */
export function normalCdf(x: number): number {
    const t = 1 / (1 + 0.2316419 * Math.abs(x));
    const poly = t * (0.31938153 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
    const tail = (Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI)) * poly;
    return x >= 0 ? 1 - tail : tail;
}

/** Istio's default bounds for istio_request_duration_milliseconds, then +Inf. */
export const ISTIO_BUCKETS_MS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, Infinity];

/** How one version behaves: its share of 5xx answers and its log-normal latency. */
export interface VersionProfile {
    readonly errorRate: number;
    readonly medianMs: number;
    /** The log-normal's shape (the standard deviation of log latency). */
    readonly sigma: number;
}

/** Each Istio bucket's share of a version's requests (not cumulative). */
export function bucketShares(profile: VersionProfile): number[] {
    const cdf = (le: number) => (le === Infinity ? 1 : normalCdf(Math.log(le / profile.medianMs) / profile.sigma));
    return ISTIO_BUCKETS_MS.map((le, i) => cdf(le) - (i === 0 ? 0 : cdf(ISTIO_BUCKETS_MS[i - 1])));
}

/**
 * One version's draws in one segment over one tick: requests, errors, attempts and failed attempts, then requests per
 * bucket and attempts per bucket (not cumulative). Without retries an attempt is a request.
 */
type Cell = Float64Array;
const BUCKETS = ISTIO_BUCKETS_MS.length;
const CELL = 4 + 2 * BUCKETS;

/** Minutes [fromMinute, toMinute) in which the versions behave otherwise: an incident, a late regression. */
export interface Phase {
    readonly fromMinute: number;
    readonly toMinute: number;
    readonly stable?: Partial<VersionProfile>;
    readonly candidate?: Partial<VersionProfile>;
}

/** A bursty version: in a random `share` of minutes (the same minutes for every algorithm), it behaves as `profile` says. */
export interface Bursts {
    readonly share: number;
    readonly candidate: Partial<VersionProfile>;
}

export interface TrafficModel {
    readonly requestsPerSecond: number;
    /** Each version's `errorRate` is then each attempt's chance to fail. */
    readonly stable: VersionProfile;
    readonly candidate: VersionProfile;
    readonly phases?: readonly Phase[];
    readonly bursts?: Bursts;
    /**
     * How many times the mesh retries an attempt answered 5xx (a route's `retries.attempts` on 5xx), always to the
     * same version (a retry stays in the route's destination). A request fails only when every attempt did.
     */
    readonly retries?: number;
}

/** Which proxy counts: the caller's (`source`: one request, failed if its last attempt failed) or the version's own (`destination`: every attempt). */
export type Reporter = "source" | "destination";

/** The share of requests a caller sees fail when each attempt fails at `errorRate` and a 5xx is retried `retries` times. */
export function visibleErrorRate(errorRate: number, retries = 0): number {
    return errorRate ** (retries + 1);
}

/** Whether minute `minute` of the stream seeded `seed` is a burst: its own draw, whoever asks first. */
function isBurst(seed: number, minute: number, share: number): boolean {
    return new Random((seed ^ Math.imul(minute + 1, 0x9e3779b1)) >>> 0).next() < share;
}

/**
 * Traffic in ticks of `tickMs`, cut at `cuts` (percents, 0 and 100 included): segment i is the users between
 * cuts[i] and cuts[i+1]. Drawn on first use and kept, so whoever asks for a tick sees the same requests.
 */
export class TrafficStream {
    private readonly ticks: { stable: Cell[]; candidate: Cell[] }[] = [];
    private readonly random: Random;
    private readonly shares = new Map<string, number[]>();

    constructor(
        readonly model: TrafficModel,
        readonly cuts: readonly number[],
        readonly tickMs: number,
        seed: number,
        /** Whose minutes burst: a stream of other requests to the same versions (a load tester's) shares its users' bursts. */
        private readonly burstSeed: number = seed,
    ) {
        this.random = new Random(seed);
    }

    private sharesOf(profile: VersionProfile): number[] {
        const key = `${profile.medianMs}/${profile.sigma}`;
        let shares = this.shares.get(key);
        if (shares === undefined) {
            shares = bucketShares(profile);
            this.shares.set(key, shares);
        }
        return shares;
    }

    /** How each version behaves in minute `minute`: the model's profiles, then its phases and bursts. */
    profilesAt(minute: number): { readonly stable: VersionProfile; readonly candidate: VersionProfile } {
        let { stable, candidate } = this.model;
        for (const phase of this.model.phases ?? []) {
            if (minute < phase.fromMinute || minute >= phase.toMinute) continue;
            stable = { ...stable, ...phase.stable };
            candidate = { ...candidate, ...phase.candidate };
        }
        const bursts = this.model.bursts;
        if (bursts !== undefined && isBurst(this.burstSeed, minute, bursts.share)) candidate = { ...candidate, ...bursts.candidate };
        return { stable, candidate };
    }

    /**
     * A request's attempts: it succeeds after j failed attempts (j = 0 to retries) or fails every one of retries + 1.
     * Poisson arrivals split by that outcome are independent Poisson counts, drawn per latency bucket (a retried
     * request's attempts are recorded at its one latency draw).
     */
    private draw(profile: VersionProfile, mean: number): Cell {
        const shares = this.sharesOf(profile);
        const retries = this.model.retries ?? 0;
        const p = profile.errorRate;
        const cell = new Float64Array(CELL);
        for (let b = 0; b < shares.length; b++) {
            if (shares[b] < 1e-9) continue;
            let requests = 0;
            let attempts = 0;
            for (let j = 0; j <= retries; j++) {
                const succeeded = poisson(mean * p ** j * (1 - p) * shares[b], this.random);
                requests += succeeded;
                attempts += (j + 1) * succeeded;
                cell[3] += j * succeeded;
            }
            const failed = poisson(mean * visibleErrorRate(p, retries) * shares[b], this.random);
            requests += failed;
            attempts += (retries + 1) * failed;
            cell[3] += (retries + 1) * failed;
            cell[0] += requests;
            cell[1] += failed;
            cell[2] += attempts;
            cell[4 + b] = requests;
            cell[4 + BUCKETS + b] = attempts;
        }
        return cell;
    }

    private tick(index: number): { stable: Cell[]; candidate: Cell[] } {
        while (this.ticks.length <= index) {
            const stable: Cell[] = [];
            const candidate: Cell[] = [];
            const profiles = this.profilesAt(Math.floor((this.ticks.length * this.tickMs) / 60_000));
            for (let s = 0; s + 1 < this.cuts.length; s++) {
                const mean = (this.model.requestsPerSecond * (this.tickMs / 1000) * (this.cuts[s + 1] - this.cuts[s])) / 100;
                stable.push(this.draw(profiles.stable, mean));
                candidate.push(this.draw(profiles.candidate, mean));
            }
            this.ticks.push({ stable, candidate });
        }
        return this.ticks[index];
    }

    /** Whether `percent` is one of the cuts, so a split at it falls on segment boundaries. */
    splitsAt(percent: number): boolean {
        return this.cuts.includes(percent);
    }

    /**
     * The requests of ticks [from, to) with `percent` of users on the candidate (the segments below the cut), as
     * `reporter` counts them; `mirror` copies that percent to the candidate while the stable version answers everyone.
     */
    window(from: number, to: number, percent: number, mirror = false, reporter: Reporter = "source"): { readonly candidate: VersionCounts; readonly stable: VersionCounts } {
        if (!this.splitsAt(percent)) throw new Error(`the traffic is cut at ${this.cuts.join(", ")}%, not at ${percent}%`);
        const candidate = new Float64Array(CELL);
        const stable = new Float64Array(CELL);
        for (let t = from; t < to; t++) {
            const tick = this.tick(t);
            for (let s = 0; s + 1 < this.cuts.length; s++) {
                const onCandidate = this.cuts[s + 1] <= percent;
                if (onCandidate) add(candidate, tick.candidate[s]);
                if (!onCandidate || mirror) add(stable, tick.stable[s]);
            }
        }
        return { candidate: counts(candidate, reporter), stable: counts(stable, reporter) };
    }
}

function add(into: Float64Array, cell: Cell): void {
    for (let i = 0; i < into.length; i++) into[i] += cell[i];
}

function counts(cell: Float64Array, reporter: Reporter): VersionCounts {
    const [requests, errors, buckets] = reporter === "source" ? [cell[0], cell[1], 4] : [cell[2], cell[3], 4 + BUCKETS];
    let cumulative = 0;
    const latency: LatencyBucket[] = ISTIO_BUCKETS_MS.map((le, b) => {
        cumulative += cell[buckets + b];
        return { le, count: cumulative };
    });
    return { requests, errors, latency: requests > 0 ? latency : [] };
}
