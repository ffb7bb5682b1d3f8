/**
 * GET / of `lenet5 serve`: one self-contained page (no external requests) where a user draws on a
 * canvas or drops an image and sees the model's prediction over its class names.
 */
import { escapeHtml } from '../presentation.js';

/** JSON for a <script> block: "<" is escaped so a class name cannot close the tag. */
function inlineJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** `invert`: whether the file box starts checked (the model was trained on dark-on-light images). */
export function pageHtml(classes: readonly string[], { invert = false, title = 'LeNet-5' } = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — predict</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232b; }
  main { max-width: 860px; margin: 0 auto; padding: 24px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  p.hint { margin: 0 0 18px; color: #56606d; }
  .panes { display: flex; gap: 28px; flex-wrap: wrap; }
  .input { display: flex; flex-direction: column; gap: 10px; }
  canvas { background: #000; border-radius: 6px; touch-action: none; cursor: crosshair; }
  #drop { border: 2px dashed #9aa4b1; border-radius: 6px; padding: 14px; text-align: center; color: #56606d; width: 248px; }
  #drop.over { border-color: #2f6fdf; background: #eaf1fd; }
  #drop img { display: block; max-width: 100%; max-height: 120px; margin: 8px auto 0; }
  button { font: inherit; padding: 6px 14px; border-radius: 5px; border: 1px solid #9aa4b1; background: #fff; cursor: pointer; }
  .result { flex: 1; min-width: 280px; }
  #name { font-size: 28px; font-weight: 600; }
  #probability { color: #56606d; margin-bottom: 12px; }
  .bar { display: grid; grid-template-columns: 130px 1fr 56px; align-items: center; gap: 8px; margin: 3px 0; }
  .bar .track { display: block; background: #e2e6eb; height: 14px; border-radius: 3px; overflow: hidden; }
  .bar .fill { display: block; background: #8fa6c4; height: 100%; }
  .bar.top .fill { background: #2f6fdf; }
  .bar.top .label { font-weight: 600; }
  .bar .value { text-align: right; font-variant-numeric: tabular-nums; }
  #error { color: #b3261e; white-space: pre-wrap; }
</style>
</head>
<body>
<main>
  <h1>${escapeHtml(title)}</h1>
  <p class="hint">Draw in the black square (light strokes on black, like the training images), or drop an image file. The server converts it to 28×28 grayscale and runs the model.</p>
  <div class="panes">
    <div class="input">
      <canvas id="canvas" width="280" height="280" aria-label="drawing area"></canvas>
      <div><button id="clear" type="button">Clear</button></div>
      <label id="drop">Drop an image here or <input id="file" type="file" accept="image/*,.pgm"><br>
        <input id="invert" type="checkbox"${invert ? ' checked' : ''}> dark object on a light background (invert)<img id="preview" alt="" hidden></label>
    </div>
    <div class="result" id="result" aria-live="polite">
      <div id="name">—</div>
      <div id="probability">Draw or drop an image to see the prediction.</div>
      <div id="bars"></div>
      <div id="error"></div>
    </div>
  </div>
</main>
<script>
const classes = ${inlineJson(classes)};
const canvas = document.getElementById('canvas');
const context = canvas.getContext('2d');
const bars = document.getElementById('bars');
const errorBox = document.getElementById('error');

function clearCanvas() {
  context.fillStyle = '#000';
  context.fillRect(0, 0, canvas.width, canvas.height);
}

function renderBars(probabilities, best) {
  bars.replaceChildren(...classes.map((name, c) => {
    const row = document.createElement('div');
    row.className = 'bar' + (c === best ? ' top' : '');
    const percent = (probabilities[c] * 100).toFixed(1) + '%';
    row.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
    row.querySelector('.label').textContent = name;
    row.querySelector('.fill').style.width = percent;
    row.querySelector('.value').textContent = percent;
    return row;
  }));
}

async function predict(body, type, invert) {
  errorBox.textContent = '';
  try {
    const response = await fetch('/predict?top=' + classes.length + '&invert=' + (invert ? 1 : 0), { method: 'POST', headers: { 'content-type': type }, body });
    const result = await response.json();
    if (!result.ok) throw new Error(result.error.message + ' (' + result.error.code + ')');
    document.getElementById('name').textContent = result.name;
    document.getElementById('probability').textContent = 'class ' + result.class + ', probability ' + (result.probability * 100).toFixed(1) + '%';
    renderBars(result.probabilities, result.class);
    document.body.dataset.predicted = String(result.class);
  } catch (error) {
    // No prediction is shown beside an error: the last one belonged to another image.
    document.getElementById('name').textContent = '—';
    document.getElementById('probability').textContent = 'No prediction for this image.';
    bars.replaceChildren();
    errorBox.textContent = error.message;
    document.body.dataset.predicted = 'error';
  }
}

let drawing = false;
function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}
canvas.addEventListener('pointerdown', (event) => {
  drawing = true;
  document.getElementById('preview').hidden = true;
  canvas.setPointerCapture(event.pointerId);
  context.strokeStyle = '#fff';
  context.lineWidth = 22;
  context.lineCap = context.lineJoin = 'round';
  context.beginPath();
  context.moveTo(...point(event));
  context.lineTo(...point(event));
  context.stroke();
});
canvas.addEventListener('pointermove', (event) => {
  if (!drawing) return;
  context.lineTo(...point(event));
  context.stroke();
});
canvas.addEventListener('pointerup', () => {
  drawing = false;
  canvas.toBlob((blob) => predict(blob, 'image/png', false), 'image/png');
});
document.getElementById('clear').addEventListener('click', clearCanvas);

function sendFile(file) {
  if (!file) return;
  clearCanvas(); // the canvas no longer shows what is predicted
  const preview = document.getElementById('preview');
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  predict(file, file.type || 'application/octet-stream', document.getElementById('invert').checked);
}
const drop = document.getElementById('drop');
drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => { event.preventDefault(); drop.classList.remove('over'); sendFile(event.dataTransfer.files[0]); });
document.getElementById('file').addEventListener('change', (event) => sendFile(event.target.files[0]));
clearCanvas();
</script>
</body>
</html>
`;
}
