/** The console's only stylesheet, served as /style.css (no CDN: the box may have no internet). */
export const STYLESHEET = `
:root { --fg: #1f2933; --muted: #52606d; --line: #d9e2ec; --bg: #f5f7fa; --ok: #0f7b3f; --ok-bg: #e3f9e5; --bad: #a61b1b; --bad-bg: #ffe3e3; --warn: #8d5b00; --warn-bg: #fff3c4; --link: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header { background: #102a43; color: #fff; padding: 0 24px; display: flex; align-items: center; gap: 28px; height: 52px; }
header .brand { font-weight: 700; font-size: 17px; letter-spacing: .2px; }
header nav a { color: #d9e2ec; text-decoration: none; margin-right: 18px; padding: 14px 0; border-bottom: 3px solid transparent; }
header nav a.here, header nav a:hover { color: #fff; border-bottom-color: #62b0e8; }
header .who { margin-left: auto; color: #9fb3c8; font-size: 13px; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 16px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
a { color: var(--link); }
.banner { border-radius: 8px; padding: 16px 20px; font-size: 17px; margin-bottom: 20px; border: 1px solid; }
.banner.ok { background: var(--ok-bg); border-color: #a3d9a5; color: var(--ok); }
.banner.bad { background: var(--bad-bg); border-color: #f5a3a3; color: var(--bad); }
.banner .fix { display: block; margin-top: 6px; font-size: 14px; color: var(--fg); }
.notice { background: var(--warn-bg); border: 1px solid #f0d37b; color: var(--warn); padding: 10px 14px; border-radius: 6px; margin-bottom: 16px; }
.notice.done { background: var(--ok-bg); border-color: #a3d9a5; color: var(--ok); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 14px; margin-bottom: 8px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; text-decoration: none; color: inherit; display: block; }
.card .n { font-size: 28px; font-weight: 700; }
.card .l { color: var(--muted); font-size: 13px; }
.card.bad .n { color: var(--bad); }
.card.warn .n { color: var(--warn); }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: top; font-size: 14px; }
th { background: #f0f4f8; font-weight: 600; color: var(--muted); font-size: 13px; }
tr:last-child td { border-bottom: 0; }
td.size, td.when { white-space: nowrap; }
td.reply { max-width: 360px; overflow-wrap: anywhere; color: var(--muted); }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.status.new, .status.retrying { background: #e0e8f9; color: #2d3a8c; }
.status.held { background: var(--warn-bg); color: var(--warn); }
.status.failed { background: var(--bad-bg); color: var(--bad); }
.status.done { background: var(--ok-bg); color: var(--ok); }
form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 14px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 3px; }
input, select { font: inherit; padding: 5px 8px; border: 1px solid #bcccdc; border-radius: 5px; min-width: 160px; background: #fff; }
button, .button { font: inherit; padding: 6px 14px; border-radius: 5px; border: 1px solid #0b5cad; background: #0b5cad; color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
.button.secondary, button.secondary { background: #fff; color: #0b5cad; }
.button.danger, button.danger { background: #a61b1b; border-color: #a61b1b; }
.actions { display: flex; gap: 10px; margin: 10px 0 4px; flex-wrap: wrap; }
dl.facts { display: grid; grid-template-columns: 210px 1fr; gap: 6px 14px; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.fixbox { background: var(--warn-bg); border: 1px solid #f0d37b; border-radius: 8px; padding: 12px 16px; margin: 14px 0; }
.fixbox code { display: block; margin-top: 6px; white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; padding: 8px; border-radius: 4px; border: 1px solid #f0d37b; }
ol.history { list-style: none; padding: 0; margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
ol.history li { padding: 10px 16px; border-bottom: 1px solid var(--line); display: grid; grid-template-columns: 250px 100px 1fr; gap: 10px; font-size: 14px; }
ol.history li:last-child { border-bottom: 0; }
ol.history .when { white-space: nowrap; color: var(--muted); font-variant-numeric: tabular-nums; }
ol.history .what { font-weight: 600; }
.muted { color: var(--muted); }
.empty { background: #fff; border: 1px dashed var(--line); border-radius: 8px; padding: 18px; color: var(--muted); }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
`;
