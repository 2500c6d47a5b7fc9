// Cards (a CDS Hooks response in the JSON file named first) -> an HTML page on stdout, rendered as the public CDS Hooks
// Sandbox renders them (src/components/CardList/card-list.jsx of github.com/cds-hooks/sandbox):
// cards sorted critical > warning > info, the summary as plain text in the indicator's colour, the
// source as a link, the detail through react-markdown with remark-gfm and rehype-raw (GitHub
// markdown WITH raw HTML: the most permissive rendering a CDS client does), suggestions and links as
// buttons, a Dismiss button with the override reasons. The detail HTML is produced by the same
// library and plugins; the frame imitates the Sandbox's CSS, not its Material UI components.
import { readFileSync } from "node:fs";
import React from "react";
import { renderToStaticMarkup } from "react-dom/server";
import ReactMarkdown from "react-markdown";
import rehypeRaw from "rehype-raw";
import remarkGfm from "remark-gfm";

const h = React.createElement;
const INDICATORS = { info: 0, warning: 1, critical: 2, error: 3 };
const COLOURS = { info: "#0079be", warning: "#ffae42", critical: "#c00", error: "#333" };

function card(c, index) {
  const parts = [h("p", { className: "summary", style: { color: COLOURS[c.indicator] }, key: "s" }, c.summary)];
  if (c.source && c.source.label) {
    parts.push(h("div", { className: "card-source", key: "src" }, "Source: ",
      h("a", { className: "source-link", href: c.source.url || "#" }, c.source.label)));
  }
  if (c.detail) {
    parts.push(h("div", { className: "detail", key: "d" },
      h(ReactMarkdown, { remarkPlugins: [remarkGfm], rehypePlugins: [rehypeRaw] }, c.detail)));
  }
  parts.push(h("div", { className: "suggestions", key: "sg" },
    (c.suggestions || []).map((s, i) => h("button", { className: "contained", key: i }, s.label))));
  parts.push(h("div", { className: "links", key: "l" },
    (c.links || []).map((l, i) => h("button", { className: "text", key: i }, l.label))));
  const reasons = (c.overrideReasons || []).map((r) => `Override: ${r.display}`).join(" | ");
  parts.push(h("div", { className: "dismiss", key: "x" }, h("hr"), h("button", { className: "outlined" },
    reasons ? "Dismiss \u25be" : "Dismiss"), reasons ? h("span", { className: "reasons" }, reasons) : null));
  return h("div", { className: `decision-card alert-${c.indicator}`, key: index }, parts);
}

const body = JSON.parse(readFileSync(process.argv[2], "utf8"));
const cards = [...(body.cards || [])].sort((b, a) => INDICATORS[a.indicator] - INDICATORS[b.indicator]);
const css = readFileSync(new URL("./sandbox-card.css", import.meta.url), "utf8");
const page = renderToStaticMarkup(h("html", { lang: "en" },
  h("head", null, h("meta", { charSet: "utf-8" }), h("title", null, body.title || "CDS Hooks Sandbox rendering"),
    h("style", { dangerouslySetInnerHTML: { __html: css } })),
  h("body", null, h("header", null, body.title || "Cards"), h("main", null, cards.map(card)))));
process.stdout.write("<!doctype html>" + page);
