// See package.json: a placeholder, so transformers.js' Node build cannot run in this repository.
throw new Error('onnxruntime-node is a stub in the voice-bot repository (root package.json "overrides"); @voice-bot/stt-whisper runs transformers.js in the browser only.');
