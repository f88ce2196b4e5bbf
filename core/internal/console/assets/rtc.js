// Rill console: WHEP player and WHIP publisher pages (RFC 9725) against the
// webrtc plugin's /rtc/v1/whep/ and /rtc/v1/whip/ on this API port.
'use strict';

const $ = sel => document.querySelector(sel);
const params = new URLSearchParams(location.search);

// The test and the operator read the page's state here and in #status.
window.rtc = { state: 'idle', location: null, pc: null };

function setState(s, detail) {
  window.rtc.state = s;
  $('#status').textContent = s + (detail ? ': ' + detail : '');
}

function endpoint(kind) {
  const q = new URLSearchParams({ app: $('#app').value, stream: $('#stream').value });
  if ($('#vhost').value) q.set('vhost', $('#vhost').value);
  return `/rtc/v1/${kind}/?` + q.toString();
}

// The whole offer with its candidates (no trickle needed; bounded wait).
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise(resolve => {
    const t = setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
    });
  });
}

async function negotiate(kind, pc) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const headers = { 'Content-Type': 'application/sdp' };
  const token = $('#token') && $('#token').value;
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(endpoint(kind), { method: 'POST', headers, body: pc.localDescription.sdp });
  const body = await r.text();
  if (r.status !== 201) throw new Error(`${kind} ${r.status}: ${body}`);
  window.rtc.location = r.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
}

function watch(pc) {
  pc.addEventListener('connectionstatechange', () => {
    setState(pc.connectionState);
    if (pc.connectionState === 'failed') stop();
  });
}

async function stop() {
  const { pc, location: loc } = window.rtc;
  window.rtc.pc = null;
  window.rtc.location = null;
  if (pc) pc.close();
  if (loc) await fetch(loc, { method: 'DELETE' }).catch(() => {});
  const v = $('#video');
  if (v.srcObject) v.srcObject.getTracks().forEach(t => t.stop());
  v.srcObject = null;
  setState('stopped');
}

async function play() {
  await stop();
  const pc = new RTCPeerConnection();
  window.rtc.pc = pc;
  watch(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const ms = new MediaStream();
  pc.addEventListener('track', ev => {
    ms.addTrack(ev.track);
    $('#video').srcObject = ms;
    $('#video').play().catch(() => {});
  });
  setState('connecting');
  try { await negotiate('whep', pc); } catch (e) { setState('error', e.message); pc.close(); }
}

// publish sends the camera and microphone; H.264 first so RTMP, HTTP-FLV
// and HLS players can play the stream.
async function publish() {
  await stop();
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
  } catch (e) { setState('error', 'camera: ' + e.message); return; }
  $('#video').srcObject = media;
  const pc = new RTCPeerConnection();
  window.rtc.pc = pc;
  watch(pc);
  for (const track of media.getTracks()) {
    const tr = pc.addTransceiver(track, { direction: 'sendonly' });
    if (track.kind === 'video' && RTCRtpSender.getCapabilities) {
      const cs = RTCRtpSender.getCapabilities('video').codecs;
      const h264 = cs.filter(c => c.mimeType.toLowerCase() === 'video/h264');
      if (h264.length && tr.setCodecPreferences) tr.setCodecPreferences(h264.concat(cs.filter(c => !h264.includes(c))));
    }
  }
  setState('connecting');
  try { await negotiate('whip', pc); } catch (e) { setState('error', e.message); pc.close(); }
}

for (const k of ['app', 'stream', 'vhost']) if (params.get(k)) $('#' + k).value = params.get(k);
$('#start').addEventListener('click', () => (document.body.dataset.kind === 'whip' ? publish() : play()));
$('#stop').addEventListener('click', stop);
if (params.get('autostart')) $('#start').click();
