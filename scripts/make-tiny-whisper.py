#!/usr/bin/env python3
"""Builds a tiny random-weight Whisper in the exact layout transformers.js loads, for tests.

No download and no torch: the two ONNX graphs are written with the `onnx` helper API (Debian:
`apt-get install python3-onnx`) and have the input/output names, dtypes and shapes of a real
Optimum export (encoder_model.onnx; decoder_model_merged.onnx with past_key_values.* inputs,
present.* outputs and use_cache_branch), at d_model=8 with one layer, so they are a few KB.
The tokenizer is a byte-level BPE over the 256 byte symbols plus Whisper's special tokens.
The transcript is gibberish; what matters is that the real pipeline (feature extraction,
encoder, generate loop with cache, tokenizer decode) runs end to end in the browser.

    /usr/bin/python3 scripts/make-tiny-whisper.py [out_dir]   # default test/fixtures/tiny-whisper
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'tiny-whisper')
D_MODEL, HEADS, LAYERS, MELS, FRAMES = 8, 2, 1, 80, 3000
HEAD_DIM = D_MODEL // HEADS
OPSET = 17
rng = np.random.default_rng(7)


def bytes_to_unicode():
    """GPT-2's reversible byte → printable character table (what ByteLevel uses)."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


byte_symbols = [bytes_to_unicode()[b] for b in range(256)]
vocab = {s: i for i, s in enumerate(byte_symbols)}
SPECIALS = ['<|endoftext|>', '<|startoftranscript|>', '<|en|>', '<|translate|>', '<|transcribe|>', '<|startoflm|>',
            '<|startofprev|>', '<|nocaptions|>', '<|notimestamps|>']
for token in SPECIALS:
    vocab[token] = len(vocab)
VOCAB = len(vocab)
EOT, SOT, NO_TS = vocab['<|endoftext|>'], vocab['<|startoftranscript|>'], vocab['<|notimestamps|>']


def w(*shape, scale=0.5):
    return rng.normal(0, scale, size=shape).astype(np.float32)


def save(model, name):
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, 'onnx', name))


def encoder():
    # input_features [b, 80, 3000] → conv (stride 2) → [b, d, 1500] → [b, 1500, d]
    nodes = [
        helper.make_node('Conv', ['input_features', 'conv_w', 'conv_b'], ['conv'], strides=[2], pads=[1, 1], kernel_shape=[3]),
        helper.make_node('Tanh', ['conv'], ['act']),
        helper.make_node('Transpose', ['act'], ['last_hidden_state'], perm=[0, 2, 1]),
    ]
    graph = helper.make_graph(
        nodes, 'tiny_whisper_encoder',
        [helper.make_tensor_value_info('input_features', TensorProto.FLOAT, ['batch_size', MELS, FRAMES])],
        [helper.make_tensor_value_info('last_hidden_state', TensorProto.FLOAT, ['batch_size', FRAMES // 2, D_MODEL])],
        [numpy_helper.from_array(w(D_MODEL, MELS, 3, scale=0.05), 'conv_w'), numpy_helper.from_array(w(D_MODEL, scale=0.1), 'conv_b')],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)], producer_name='make-tiny-whisper'), 'encoder_model.onnx')


def decoder_merged():
    kv = lambda name, seq: helper.make_tensor_value_info(name, TensorProto.FLOAT, ['batch_size', HEADS, seq, HEAD_DIM])
    inputs = [
        helper.make_tensor_value_info('input_ids', TensorProto.INT64, ['batch_size', 'decoder_sequence_length']),
        helper.make_tensor_value_info('encoder_hidden_states', TensorProto.FLOAT, ['batch_size', 'encoder_sequence_length', D_MODEL]),
    ]
    outputs = [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['batch_size', 'decoder_sequence_length', VOCAB])]
    nodes = [
        helper.make_node('Gather', ['embed', 'input_ids'], ['emb'], axis=0),
        helper.make_node('ReduceMean', ['encoder_hidden_states'], ['enc_mean'], axes=[1], keepdims=1),
        helper.make_node('Add', ['emb', 'enc_mean'], ['mixed']),
        helper.make_node('Tanh', ['mixed'], ['hidden']),
        helper.make_node('MatMul', ['hidden', 'lm_head'], ['logits']),
        helper.make_node('Reshape', ['hidden', 'heads_shape'], ['hidden_heads']),
        helper.make_node('Transpose', ['hidden_heads'], ['new_kv'], perm=[0, 2, 1, 3]),
        helper.make_node('Reshape', ['encoder_hidden_states', 'heads_shape'], ['enc_heads']),
        helper.make_node('Transpose', ['enc_heads'], ['enc_kv'], perm=[0, 2, 1, 3]),
    ]
    for i in range(LAYERS):
        for part in ('key', 'value'):
            inputs.append(kv(f'past_key_values.{i}.decoder.{part}', 'past_decoder_sequence_length'))
            inputs.append(kv(f'past_key_values.{i}.encoder.{part}', 'encoder_sequence_length_out'))
            outputs.append(kv(f'present.{i}.decoder.{part}', 'past_decoder_sequence_length + 1'))
            outputs.append(kv(f'present.{i}.encoder.{part}', 'encoder_sequence_length_out'))
            nodes.append(helper.make_node('Concat', [f'past_key_values.{i}.decoder.{part}', 'new_kv'], [f'present.{i}.decoder.{part}'], axis=2))
            nodes.append(helper.make_node('Identity', ['enc_kv'], [f'present.{i}.encoder.{part}']))
    inputs.append(helper.make_tensor_value_info('use_cache_branch', TensorProto.BOOL, [1]))
    lm_head = w(D_MODEL, VOCAB)
    lm_head[:, EOT] += 0.4  # end sooner than max_length now and then
    graph = helper.make_graph(
        nodes, 'tiny_whisper_decoder_merged', inputs, outputs,
        [
            numpy_helper.from_array(w(VOCAB, D_MODEL), 'embed'),
            numpy_helper.from_array(lm_head, 'lm_head'),
            numpy_helper.from_array(np.array([0, 0, HEADS, HEAD_DIM], dtype=np.int64), 'heads_shape'),
        ],
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)], producer_name='make-tiny-whisper'), 'decoder_model_merged.onnx')


def write_json(name, value):
    with open(os.path.join(OUT, name), 'w', encoding='utf-8') as f:
        json.dump(value, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write('\n')


def main():
    os.makedirs(os.path.join(OUT, 'onnx'), exist_ok=True)
    encoder()
    decoder_merged()
    special = dict(decoder_start_token_id=SOT, eos_token_id=EOT, pad_token_id=EOT, bos_token_id=EOT)
    write_json('config.json', dict(
        special, model_type='whisper', architectures=['WhisperForConditionalGeneration'], is_encoder_decoder=True,
        d_model=D_MODEL, encoder_layers=LAYERS, decoder_layers=LAYERS, encoder_attention_heads=HEADS,
        decoder_attention_heads=HEADS, encoder_ffn_dim=D_MODEL, decoder_ffn_dim=D_MODEL, num_mel_bins=MELS,
        vocab_size=VOCAB, max_source_positions=FRAMES // 2, max_target_positions=448, use_cache=True, torch_dtype='float32'))
    write_json('generation_config.json', dict(
        special, max_length=24, no_timestamps_token_id=NO_TS, is_multilingual=False, begin_suppress_tokens=[EOT],
        suppress_tokens=[], return_timestamps=False))
    write_json('preprocessor_config.json', dict(
        feature_extractor_type='WhisperFeatureExtractor', processor_class='WhisperProcessor', feature_size=MELS,
        hop_length=160, n_fft=400, n_samples=480000, nb_max_frames=FRAMES, chunk_length=30, sampling_rate=16000,
        padding_side='right', padding_value=0.0, return_attention_mask=False))
    added = [dict(id=vocab[t], content=t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True) for t in SPECIALS]
    byte_level = dict(type='ByteLevel', add_prefix_space=False, trim_offsets=True, use_regex=True)
    write_json('tokenizer.json', dict(
        version='1.0', truncation=None, padding=None, added_tokens=added, normalizer=None, pre_tokenizer=byte_level,
        post_processor=dict(byte_level, trim_offsets=False), decoder=byte_level,
        model=dict(type='BPE', dropout=None, unk_token=None, continuing_subword_prefix='', end_of_word_suffix='',
                   fuse_unk=False, byte_fallback=False, vocab=vocab, merges=[])))
    write_json('tokenizer_config.json', dict(
        tokenizer_class='WhisperTokenizer', bos_token='<|endoftext|>', eos_token='<|endoftext|>', unk_token='<|endoftext|>',
        pad_token='<|endoftext|>', model_max_length=1024, clean_up_tokenization_spaces=True, errors='replace',
        add_prefix_space=False))
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f'tiny whisper: vocab {VOCAB}, {total} bytes in {os.path.abspath(OUT)}')


if __name__ == '__main__':
    main()
