/**
 * Size figures other projects (or their maintainers) have published, for comparison with our
 * measured bundle sizes. Each carries its source; none of them was measured here, and most are
 * not the same measure as ours (raw npm package size, or minified-uncompressed), as noted.
 */
export interface PeerFigure {
  what: string;
  figure: string;
  measure: string;
  source: string;
}

export const PEER_FIGURES: PeerFigure[] = [
  {
    what: 'ElevenLabs `<elevenlabs-convai>` embed (`@elevenlabs/convai-widget-embed` 0.0.10)',
    figure: '199 kB',
    measure:
      'npm "unpacked size" of the package (5 files, uncompressed); gzip first download not measured here',
    source: 'https://npmjs.com/package/@elevenlabs/convai-widget-embed',
  },
  {
    what: 'Daily `daily-js` (the WebRTC transport under Vapi’s web SDK and Pipecat’s Daily transport)',
    figure: '128.9 kB',
    measure:
      '`daily-iframe-esm.js` as it lands in an app bundle (minified, uncompressed), reported by a user in 2023',
    source: 'https://github.com/daily-co/daily-js/issues/207',
  },
  {
    what: 'LiveKit `livekit-client` 2.5.9 (LiveKit Agents web clients)',
    figure: '~350 kB',
    measure: 'bundlephobia minified, uncompressed, as quoted by the maintainer',
    source: 'https://github.com/livekit/client-sdk-js/issues/1273',
  },
  {
    what: 'onnxruntime-web WebAssembly backend (what Silero VAD in the browser needs)',
    figure: '12.8 MB (plain SIMD build), 25.9 MB (JSEP/WebGPU build)',
    measure:
      'raw `.wasm` sizes of one onnxruntime-web version, from a project that switched to the plain build',
    source: 'https://github.com/surisuririsu/gakumas-tools/pull/114',
  },
];
