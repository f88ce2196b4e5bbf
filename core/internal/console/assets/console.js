// Rill console: polls the SRS-compatible API and renders it.
'use strict';

const api = (path, opts) => fetch(path, Object.assign({ credentials: 'same-origin' }, opts)).then(r => r.json());
const $ = sel => document.querySelector(sel);
const esc = s => String(s == null ? '' : s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

const state = { httpBase: null, player: null };

// The HTTP streaming plugin (httpstream) serves .flv and .m3u8; find its port.
function httpBase(plugins) {
  const p = plugins.find(p => p.name === 'httpstream' && p.state === 'running');
  if (!p || !p.listeners || !p.listeners.length) return null;
  const port = p.listeners[0].addr.split(':').pop();
  return `${location.protocol}//${location.hostname}:${port}`;
}

function rows(sel, html) { $(sel + ' tbody').innerHTML = html.join(''); }

// whepHref links a stream to the WHEP player page (the webrtc plugin).
function whepHref(s) {
  const path = s.url.startsWith('/') ? s.url : s.url.slice(s.url.indexOf('/'));
  const i = path.lastIndexOf('/');
  const q = new URLSearchParams({ app: path.slice(1, i), stream: path.slice(i + 1), autostart: '1' });
  if (s.vhost_name && s.vhost_name !== '__defaultVhost__') q.set('vhost', s.vhost_name);
  return 'whep.html?' + q.toString();
}

function render(plugins, vhosts, streams, clients) {
  state.httpBase = httpBase(plugins);
  state.webrtc = plugins.some(p => p.name === 'webrtc' && p.state === 'running');
  rows('#plugins', plugins.map(p => `<tr><td>${esc(p.name)}</td><td>${esc(p.version)}</td>
    <td class="state-${esc(p.state)}">${esc(p.state)}</td><td>${p.pid || ''}</td><td>${p.restarts}</td>
    <td>${(p.listeners || []).map(l => esc(l.network + '://' + l.addr)).join(' ')}</td><td class="err">${esc(p.last_error)}</td></tr>`));
  rows('#vhosts', vhosts.map(v => `<tr><td>${esc(v.name)}</td><td>${esc(v.id)}</td><td>${v.streams}</td><td>${v.clients}</td></tr>`));
  rows('#streams', streams.map(s => {
    const v = s.video ? `${esc(s.video.codec)} ${s.video.width || '?'}x${s.video.height || '?'} ${esc(s.video.profile || '')}` : '';
    const a = s.audio ? `${esc(s.audio.codec)} ${s.audio.sample_rate || ''}` : '';
    const live = s.publish && s.publish.active;
    const play = live && state.httpBase ? `<button data-play="flv" data-url="${esc(s.url)}" data-vhost="${esc(s.vhost_name)}">FLV</button>
      <button data-play="hls" data-url="${esc(s.url)}" data-vhost="${esc(s.vhost_name)}">HLS</button>` : '';
    const rtc = live && state.webrtc ? ` <a data-play-rtc href="${esc(whepHref(s))}">WebRTC</a>` : '';
    return `<tr data-stream="${esc(s.url)}"><td>${esc(s.url)}</td><td>${live ? esc(s.publish.cid) : '<span class="muted">not published</span>'}</td>
      <td>${v}</td><td>${a}</td><td>${s.clients}</td><td>${s.kbps.recv_30s}</td><td>${s.kbps.send_30s}</td><td>${play}${rtc}</td></tr>`;
  }));
  rows('#clients', clients.map(c => `<tr data-client="${esc(c.id)}"><td>${esc(c.id)}</td><td>${esc(c.type)}</td><td>${esc(c.url)}</td>
    <td>${esc(c.ip)}</td><td>${Math.round(c.alive)}</td><td>${c.send_bytes}</td><td>${c.recv_bytes}</td><td>${esc(c.plugin)}</td>
    <td><button class="kick" data-kick="${esc(c.id)}">kick</button></td></tr>`));
}

async function refresh() {
  try {
    const [v, p, vh, s, c] = await Promise.all([
      api('/api/v1/versions'), api('/api/v1/plugins/'), api('/api/v1/vhosts/'), api('/api/v1/streams/?count=1000'), api('/api/v1/clients/?count=1000'),
    ]);
    $('#server').textContent = `server ${v.server} · pid ${v.pid} · v${v.data.version}`;
    render(p.plugins || [], vh.vhosts || [], s.streams || [], c.clients || []);
    $('#updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    $('#error').textContent = '';
  } catch (e) {
    $('#error').textContent = 'API unreachable: ' + e;
  }
}

function stop() {
  if (state.player) { state.player.destroy(); state.player = null; }
  const video = $('#video');
  video.removeAttribute('src');
  video.load();
  $('#player').style.display = 'none';
}

function streamURL(url, vhost, ext) {
  // url is /app/stream for the default vhost, vhost/app/stream otherwise.
  let path = url.startsWith('/') ? url : url.slice(url.indexOf('/'));
  let q = vhost && vhost !== '__defaultVhost__' ? '?vhost=' + encodeURIComponent(vhost) : '';
  return state.httpBase + path + ext + q;
}

// play starts a player: kind is "flv" (mpegts.js) or "hls" (hls.js, or the
// browser's own HLS where it has one).
function play(kind, url, vhost) {
  stop();
  const video = $('#video');
  const src = streamURL(url, vhost, kind === 'flv' ? '.flv' : '.m3u8');
  $('#player').style.display = 'block';
  $('#playing').textContent = `${kind.toUpperCase()} ${src}`;
  $('#pstatus').textContent = '';
  if (kind === 'flv') {
    if (!mpegts.getFeatureList().mseLivePlayback) { $('#pstatus').textContent = 'this browser has no MSE'; return; }
    const p = mpegts.createPlayer({ type: 'flv', isLive: true, url: src }, { enableStashBuffer: false, liveBufferLatencyChasing: true });
    p.attachMediaElement(video);
    p.on(mpegts.Events.ERROR, (t, d) => { $('#pstatus').textContent = `player error: ${t} ${d}`; });
    p.load();
    p.play();
    state.player = { destroy: () => p.destroy() };
  } else if (window.Hls && Hls.isSupported()) {
    const h = new Hls({ liveSyncDurationCount: 2 });
    h.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) $('#pstatus').textContent = `player error: ${d.type} ${d.details}`; });
    h.loadSource(src);
    h.attachMedia(video);
    video.play().catch(() => {});
    state.player = { destroy: () => h.destroy() };
  } else {
    video.src = src;
    video.play().catch(() => {});
  }
}

document.addEventListener('click', async ev => {
  const t = ev.target;
  if (t.dataset.kick) {
    const r = await api('/api/v1/clients/' + encodeURIComponent(t.dataset.kick), { method: 'DELETE' });
    $('#error').textContent = r.code === 0 ? '' : `kick ${t.dataset.kick}: code ${r.code}`;
    refresh();
  } else if (t.dataset.play) {
    play(t.dataset.play, t.dataset.url, t.dataset.vhost);
  } else if (t.id === 'close') {
    stop();
  }
});

// #play=flv:/live/stream (or hls:...) starts a player at load, for links.
const auto = location.hash.match(/^#play=(flv|hls):(.+)$/);
refresh().then(() => { if (auto && state.httpBase) play(auto[1], decodeURIComponent(auto[2]), ''); });
setInterval(refresh, 2000);
