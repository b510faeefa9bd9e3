import { html, type Html } from './html.ts';

export type Section = 'overview' | 'queue' | 'failed' | 'none';

export interface PageFrame {
  title: string;
  section: Section;
  /** Who is signed in, shown in the corner. */
  who: string;
  /** The agent's name for this relay (its upstream). */
  relay: string;
}

/** The frame every console page shares: one stylesheet, no scripts. */
export function layout(frame: PageFrame, content: Html): Html {
  const link = (section: Section, href: string, label: string) => html`<a href="${href}" class="${frame.section === section ? 'here' : ''}">${label}</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · smarthost</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header>
  <span class="brand">smarthost</span>
  <nav>${link('overview', '/', 'Overview')}${link('queue', '/queue', 'Queue')}${link('failed', '/failed', 'Failed')}</nav>
  <span class="who">${frame.relay} · signed in as ${frame.who}</span>
</header>
<main>
${content}
</main>
</body>
</html>
`;
}
