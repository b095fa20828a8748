// Notifications (`rollout.notify`): what a team's channel hears of a rollout. One message per event, in each
// service's own format: a Slack incoming webhook's Block Kit blocks, a Teams Workflows webhook's Adaptive Card,
// or plain JSON. Sent beside the rollout, never in its way: each has its timeout, a failure is logged (without the
// URL, which may be a secret) and the rollout goes on; the command waits for the last ones before it exits.
import type { Notifier, NotifyEvent } from "../components/config/rollout-config";

/** One notification, whatever it is sent to. */
export interface NotifyMessage {
    readonly event: NotifyEvent;
    readonly stack: string;
    readonly rollout: string;
    readonly services: readonly { readonly service: string; readonly release: string; readonly stable: string; readonly candidate: string }[];
    /** Where the rollout stands: "step 2/4 (10%)", "promotion". */
    readonly phase: string;
    /** One line: what happened. */
    readonly headline: string;
    readonly reason?: string;
    /** Who acted, for an operator's action and the start. */
    readonly actor?: string;
    /** The numbers the last decision was made on, a line per service. */
    readonly numbers: readonly string[];
    /** Where to see the rollout drawn: the report's URL or path. */
    readonly report: string;
    /** A rehearsal (the render engine): nothing in a cluster moved. */
    readonly rehearsal?: boolean;
}

const EMOJI: Record<NotifyEvent, string> = { start: ":rocket:", step: ":arrow_right:", hold: ":double_vertical_bar:", rollback: ":rewind:", promotion: ":white_check_mark:", action: ":bust_in_silhouette:" };
/** At most about `max` characters, cut between graphemes (no lone surrogate, no split emoji), with an ellipsis when cut. */
const cut = (text: string, max: number) => {
    if (text.length <= max) return text;
    const graphemes = Array.from(new Intl.Segmenter().segment(text), (s) => s.segment);
    let kept = "";
    for (const g of graphemes) {
        if (kept.length + g.length > max - 1) break;
        kept += g;
    }
    return `${kept}…`;
};
/** Slack's mrkdwn: &, < and > escaped, so text someone typed (a --reason) can neither mention @channel nor plant a link. */
const slackText = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const releases = (m: NotifyMessage) => m.services.map((s) => `${s.service} ${s.stable} -> ${s.candidate} (${s.release})`).join(", ");

/** The headline, marked when nothing real moved. */
const headlineOf = (m: NotifyMessage) => `${m.rehearsal === true ? "Rehearsal: " : ""}${m.headline}`;

/** Slack's incoming webhook: `text` (the notification's fallback) and Block Kit blocks, within Slack's limits. */
export function slackPayload(m: NotifyMessage): unknown {
    m = { ...m, headline: headlineOf(m) };
    // Escaped, then cut within the limit (an entity cut in two is dropped, not left half).
    const mrkdwn = (text: string, max = 3000) => ({ type: "mrkdwn", text: cut(slackText(text), max).replace(/&[a-z]*…$/, "…") });
    const fields = [mrkdwn(`*Stack*\n${m.stack}`, 2000), mrkdwn(`*Phase*\n${m.phase}`, 2000), mrkdwn(`*Releases*\n${releases(m)}`, 2000), ...(m.actor === undefined ? [] : [mrkdwn(`*By*\n${m.actor}`, 2000)])];
    return {
        text: cut(slackText(`${m.headline} (${m.stack})`), 3000),
        blocks: [
            { type: "header", text: { type: "plain_text", text: cut(m.headline, 150), emoji: true } },
            { type: "section", text: mrkdwn(`${EMOJI[m.event]} ${m.reason ?? m.headline}`), fields },
            ...(m.numbers.length === 0 ? [] : [{ type: "section", text: mrkdwn(`*Deciding numbers*\n${m.numbers.map((n) => `• ${n}`).join("\n")}`) }]),
            { type: "context", elements: [mrkdwn(`Rollout ${m.rollout} · report: ${m.report}`)] },
        ],
    };
}

/** A Teams Workflows webhook ("Post to a channel when a webhook request is received"): a message with one Adaptive Card. */
export function teamsPayload(m: NotifyMessage): unknown {
    // Teams takes a card of about 28 KB: each text within a few thousand characters keeps it well below.
    m = { ...m, headline: cut(headlineOf(m), 500), ...(m.reason !== undefined && { reason: cut(m.reason, 3000) }), numbers: m.numbers.slice(0, 20).map((n) => cut(n, 1000)) };
    const link = /^https?:\/\//.test(m.report);
    return {
        type: "message",
        attachments: [
            {
                contentType: "application/vnd.microsoft.card.adaptive",
                contentUrl: null,
                content: {
                    $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
                    type: "AdaptiveCard",
                    version: "1.4",
                    body: [
                        { type: "TextBlock", text: m.headline, weight: "Bolder", size: "Medium", wrap: true },
                        ...(m.reason === undefined ? [] : [{ type: "TextBlock", text: m.reason, wrap: true }]),
                        {
                            type: "FactSet",
                            facts: [
                                { title: "Stack", value: m.stack },
                                { title: "Phase", value: m.phase },
                                { title: "Releases", value: releases(m) },
                                ...(m.actor === undefined ? [] : [{ title: "By", value: m.actor }]),
                                { title: "Rollout", value: m.rollout },
                                ...(link ? [] : [{ title: "Report", value: m.report }]),
                            ],
                        },
                        ...m.numbers.map((n) => ({ type: "TextBlock", text: n, wrap: true, isSubtle: true, size: "Small" })),
                    ],
                    ...(link && { actions: [{ type: "Action.OpenUrl", title: "Open the report", url: m.report }] }),
                },
            },
        ],
    };
}

/** Any endpoint: the message as it is, with what it is about named. */
export function webhookPayload(m: NotifyMessage): unknown {
    return { kind: "rollout", ...m };
}

const PAYLOADS = { slack: slackPayload, teams: teamsPayload, webhook: webhookPayload } as const;

/** Sends each message to every notifier subscribed to its event; never throws, never waits for the answers. */
export class Notifications {
    private readonly pending = new Set<Promise<void>>();

    constructor(
        private readonly notifiers: readonly Notifier[],
        private readonly log: (line: string) => void,
    ) {}

    send(message: NotifyMessage): void {
        this.notifiers.forEach((n, i) => {
            if (!n.events.includes(message.event)) return;
            const name = `rollout.notify[${i}] (${n.kind})`;
            if (n.url === undefined) {
                this.log(`${name}: not sent, its URL is a secret this engine cannot read (a rehearsal reads the stack file without the Pulumi CLI)`);
                return;
            }
            const url = n.url;
            const sent = (async () => {
                try {
                    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(PAYLOADS[n.kind](message)), signal: AbortSignal.timeout(n.timeoutMs), redirect: "manual" });
                    await response.arrayBuffer().catch(() => undefined);
                    // The URL stays out of the log: it may be a secret (a Slack webhook's is a credential).
                    if (!response.ok) this.log(`${name}: the ${message.event} notification was answered ${response.status}; the rollout goes on`);
                } catch (error) {
                    const why = error instanceof Error && error.name === "TimeoutError" ? `no answer within ${n.timeoutMs / 1000}s` : "the request failed";
                    this.log(`${name}: the ${message.event} notification was not delivered (${why}); the rollout goes on`);
                }
            })();
            this.pending.add(sent);
            void sent.finally(() => this.pending.delete(sent));
        });
    }

    /** Waits for the notifications still on their way (each bounded by its timeout). */
    async settled(): Promise<void> {
        await Promise.all([...this.pending]);
    }
}
