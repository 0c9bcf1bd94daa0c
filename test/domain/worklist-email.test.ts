import { describe, expect, it } from "vitest";
import { buildMimeMessage, escapeHtml, InvalidMailHeaderError, worklistEmail, worklistLink } from "../../lambdas/domain/worklist-email.js";
import { parseMime } from "../support/round-fixtures.js";

const BASE = {
  roundId: "select-2026-W48",
  roundPredictedSeconds: 5 * 3600,
  budgetSeconds: 40 * 3600,
  worklistUrl: "https://label.example.org/worklist",
};

describe("worklist e-mail", () => {
  it("lists each stack in the worklist's order as 'Stack i of n · minutes · frames', the id only as a detail; one link; totals vs budget; the next round", () => {
    const email = worklistEmail({
      ...BASE,
      stacks: [
        { stackId: "stack-b", predictedSeconds: 1800, stackScore: 0.875, stackUncertainty: 0.12345, frames: 32 },
        { stackId: "stack-a", predictedSeconds: 20, stackScore: 0.1, stackUncertainty: 0.2 },
      ],
    });
    expect(email.subject).toBe("Labeling 2026-W48: 2 stacks, 0.5 h predicted");
    expect(email.text).toContain("- Stack 1 of 2 · 1 min   (id stack-a, stack score 0.10, uncertainty 0.2000)");
    expect(email.text).toContain("- Stack 2 of 2 · 30 min · 32 frames   (id stack-b, stack score 0.88, uncertainty 0.1235)");
    expect(email.text).toContain(
      "The whole round: 5.0 h predicted of the 40.0 h weekly budget. The next round is selected in week 2026-W49.",
    );
    // One link, to the worklist (no per-stack links to copy around).
    expect(email.text.match(/https:\/\//g)).toHaveLength(1);
    expect(email.text).toContain("Open your worklist: https://label.example.org/worklist?round=select-2026-W48");
    expect(email.html.match(/<a /g)).toHaveLength(1);
    expect(email.html).toContain("<li>Stack 2 of 2 · 30 min · 32 frames <small");
    // The year turns over by ISO weeks: 2026 has 53.
    expect(worklistEmail({ ...BASE, roundId: "select-2026-W53", stacks: [] }).text).toContain("selected in week 2027-W01");
  });

  it("an annotator with no stacks gets a short nothing-for-you e-mail", () => {
    const email = worklistEmail({ ...BASE, stacks: [] });
    expect(email.subject).toBe("Labeling 2026-W48: nothing for you this week");
    expect(email.text).toContain("Nothing for you this week");
    expect(email.text).toContain("5.0 h predicted of the 40.0 h weekly budget");
    expect(email.html).not.toContain("<table");
  });

  it("escapes every interpolated value in the HTML part", () => {
    const evil = `x"><script>alert('1')</script>&`;
    const email = worklistEmail({ ...BASE, stacks: [{ stackId: evil, predictedSeconds: 60, stackScore: 0.5, stackUncertainty: 0.1 }] });
    expect(email.html).not.toContain("<script>");
    expect(email.html).toContain("x&quot;&gt;&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;&amp;");
    expect(escapeHtml(`<&>"'`)).toBe("&lt;&amp;&gt;&quot;&#39;");
  });

  it("links keep the page's own query and encode the stack id", () => {
    expect(worklistLink("https://x.org/w?lang=en", "select-2026-W48", "a b#c")).toBe(
      "https://x.org/w?lang=en&round=select-2026-W48#a%20b%23c",
    );
    expect(worklistLink("https://x.org/w", "select-2026-W01")).toBe("https://x.org/w?round=select-2026-W01");
  });
});

describe("MIME message", () => {
  const email = worklistEmail({
    ...BASE,
    stacks: [{ stackId: "stack-ü<1>", predictedSeconds: 600, stackScore: 0.5, stackUncertainty: 0.25 }],
  });
  const raw = buildMimeMessage({ from: "ich-al@example.org", to: "amy@example.org", ...email, date: "2026-11-26T06:00:00Z" });

  it("parses back: headers, boundary, a text and an HTML part, both UTF-8 base64", () => {
    const mime = parseMime(raw);
    expect(mime.headers.get("from")).toBe("ich-al@example.org");
    expect(mime.headers.get("to")).toBe("amy@example.org");
    expect(mime.headers.get("subject")).toBe(email.subject);
    expect(mime.headers.get("date")).toBe("Thu, 26 Nov 2026 06:00:00 +0000");
    expect(mime.headers.get("mime-version")).toBe("1.0");
    expect(mime.headers.get("content-type")).toMatch(/^multipart\/alternative; boundary="/);
    expect(mime.parts.map((p) => p.headers.get("content-type"))).toEqual(["text/plain; charset=UTF-8", "text/html; charset=UTF-8"]);
    expect(mime.parts[0]?.body).toBe(email.text);
    expect(mime.parts[1]?.body).toBe(email.html);
    expect(mime.parts[1]?.body).toContain("stack-ü&lt;1&gt;");
    expect(raw.split("\r\n").filter((line) => line === `--${mime.boundary}`)).toHaveLength(2);
    expect(raw.endsWith(`--${mime.boundary}--\r\n`)).toBe(true);
    expect(raw.replace(/\r\n/g, "")).not.toMatch(/\n/); // CRLF only
  });

  it("is deterministic and the boundary never occurs inside a part", () => {
    expect(buildMimeMessage({ from: "a@x.org", to: "b@x.org", ...email, date: "2026-11-26T06:00:00Z" })).toBe(
      buildMimeMessage({ from: "a@x.org", to: "b@x.org", ...email, date: "2026-11-26T06:00:00Z" }),
    );
    const mime = parseMime(raw);
    for (const part of mime.parts) expect(part.body).not.toContain(mime.boundary);
  });

  it("encodes a non-ASCII subject (RFC 2047) and refuses header injection", () => {
    const m = buildMimeMessage({
      from: "a@x.org",
      to: "b@x.org",
      subject: "Woche 48 – Übersicht",
      text: "t",
      html: "h",
      date: "2026-11-26T06:00:00Z",
    });
    const subject = parseMime(m).headers.get("subject") ?? "";
    expect(subject).toMatch(/^=\?UTF-8\?B\?(.+)\?=$/);
    expect(Buffer.from(/^=\?UTF-8\?B\?(.+)\?=$/.exec(subject)?.[1] ?? "", "base64").toString("utf8")).toBe("Woche 48 – Übersicht");
    expect(() =>
      buildMimeMessage({
        from: "a@x.org",
        to: "b@x.org\r\nBcc: c@x.org",
        subject: "s",
        text: "t",
        html: "h",
        date: "2026-11-26T06:00:00Z",
      }),
    ).toThrow(InvalidMailHeaderError);
    expect(() => buildMimeMessage({ from: "a@x.org", to: "b@x.org", subject: "s", text: "t", html: "h", date: "soon" })).toThrow(
      InvalidMailHeaderError,
    );
  });
});
