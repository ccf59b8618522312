// Builds pwa/dist: index.html, content-hashed assets, sw.js with its precache manifest, web manifest, icons.
// Usage: node build.mjs [outDir]   (PALIER_APP_VERSION overrides the version shown and reported to the server)
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, 'dist'));
const pkg = JSON.parse(await readFile(join(here, 'package.json'), 'utf8'));
const version = process.env.PALIER_APP_VERSION || pkg.version;

const md5 = (buf) => createHash('md5').update(buf).digest('hex');

// A square PNG icon: a white "step" (palier) on the app's blue, drawn pixel by pixel (no image tool needed).
function icon(size) {
  const crc32 = (buf) => {
    let c = ~0;
    for (const b of buf) { c ^= b; for (let k = 0; k < 8; k += 1) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
    return ~c >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const raw = Buffer.alloc((size * 3 + 1) * size);
  for (let y = 0; y < size; y += 1) {
    raw[y * (size * 3 + 1)] = 0;
    for (let x = 0; x < size; x += 1) {
      const u = x / size; const v = y / size;
      const white = (v > 0.6 && v < 0.72 && u > 0.2 && u < 0.8) || (v > 0.42 && v < 0.6 && u > 0.5 && u < 0.62)
        || (v > 0.3 && v < 0.42 && u > 0.5 && u < 0.8);
      const p = y * (size * 3 + 1) + 1 + x * 3;
      const [r, g, b] = white ? [255, 255, 255] : [0, 64, 168];
      raw[p] = r; raw[p + 1] = g; raw[p + 2] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

await rm(out, { recursive: true, force: true });
await mkdir(join(out, 'assets'), { recursive: true });
await mkdir(join(out, 'icons'), { recursive: true });

// One app's bundle (JS and the CSS it imports) under content-hashed names; answers their URLs from the site root.
async function bundleApp(entry, dir, prefix) {
  const result = await build({
    entryPoints: [join(here, entry)], bundle: true, minify: true, format: 'esm', target: 'es2020',
    outdir: join(out, dir), entryNames: `${prefix}-[hash]`, metafile: true, legalComments: 'none',
    define: { __APP_VERSION__: JSON.stringify(version) }, logLevel: 'warning',
  });
  const urls = Object.keys(result.metafile.outputs).map((p) => '/' + relative(out, resolve(p)).split('\\').join('/'));
  return { js: urls.find((p) => p.endsWith('.js')), css: urls.find((p) => p.endsWith('.css')) };
}

const { js, css } = await bundleApp('src/main.js', 'assets', 'app');

await writeFile(join(out, 'index.html'), `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="description" content="Palier : porte-à-porte, agenda et engagements des habitants, même sans réseau.">
<meta name="theme-color" content="#0040a8">
<title>Palier</title>
<link rel="manifest" href="/manifest.webmanifest">
<link rel="icon" href="/icons/icon-192.png">
<link rel="apple-touch-icon" href="/icons/icon-192.png">
<link rel="stylesheet" href="${css}">
<script type="module" src="${js}"></script>
</head>
<body>
<div id="app"><p class="page">Chargement de Palier…</p></div>
<noscript>Palier a besoin de JavaScript.</noscript>
</body>
</html>
`);
// The head-office app (/bureau/): its own entry, page and hashed assets; never precached by the field app's worker.
const office = await bundleApp('src/office/main.js', 'bureau/assets', 'office');
await writeFile(join(out, 'bureau/index.html'), `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="Palier, siège : progression, revues, agenda, équipe et exports.">
<meta name="theme-color" content="#0040a8">
<title>Palier — Siège</title>
<link rel="icon" href="/icons/icon-192.png">
<link rel="stylesheet" href="${office.css}">
<script type="module" src="${office.js}"></script>
</head>
<body>
<div id="app"><p class="page">Chargement de l’espace siège…</p></div>
<noscript>L’espace siège a besoin de JavaScript.</noscript>
</body>
</html>
`);
await writeFile(join(out, 'manifest.webmanifest'), JSON.stringify({
  name: 'Palier — terrain', short_name: 'Palier', lang: 'fr', dir: 'ltr', start_url: '/', scope: '/', id: '/',
  display: 'standalone', orientation: 'portrait', background_color: '#ffffff', theme_color: '#0040a8',
  description: 'Porte-à-porte, agenda et engagements des habitants, même sans réseau.',
  icons: [
    { src: '/icons/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
    { src: '/icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
    { src: '/icons/maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
  ],
}, null, 2));
await writeFile(join(out, 'icons/icon-192.png'), icon(192));
await writeFile(join(out, 'icons/icon-512.png'), icon(512));
await writeFile(join(out, 'icons/maskable-512.png'), icon(512));

// The precache manifest: hashed assets need no revision; the others are revisioned by content.
const manifest = [];
async function walk(dir) {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) { await walk(p); continue; }
    const url = '/' + relative(out, p).split('\\').join('/');
    if (url === '/sw.js' || url.endsWith('.map') || url.startsWith('/bureau/')) continue; // the office app is online-only
    manifest.push({ url, revision: url.startsWith('/assets/') ? null : md5(await readFile(p)) });
  }
}
await walk(out);
manifest.sort((a, b) => a.url.localeCompare(b.url));

await build({
  entryPoints: [join(here, 'src/sw.js')], bundle: true, minify: true, format: 'iife', target: 'es2020',
  outfile: join(out, 'sw.js'), legalComments: 'none', logLevel: 'warning',
  define: { 'self.__WB_MANIFEST': JSON.stringify(manifest), 'process.env.NODE_ENV': '"production"',
    __APP_VERSION__: JSON.stringify(version) }, // Background Sync reports the version it pushes with
});
await writeFile(join(out, 'version.json'), JSON.stringify({ version, js, css }));
console.log(`built ${version} into ${out}: ${js}, ${css}, ${manifest.length} precached files`);
