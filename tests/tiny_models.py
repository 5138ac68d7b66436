"""Tiny models built in code for unit tests: a word-level (or byte-level BPE) tokenizer, a 2-layer Llama,
2-layer BERTs."""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "[CLS]", "[SEP]", "[MASK]"]
CORPUS = [
    "the compiler translates source code into machine code",
    "a kernel schedules processes and manages memory",
    "the drug helped my pain with no side effects",
    "terrible nausea and headaches so i stopped",
    "user assistant system what does mean in computing",
    "sport business politics tech entertainment positive negative neutral",
]


def train_tokenizer(folder: Path, *, chat: bool):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CORPUS * 2, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    if not chat:
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
        )
    kwargs = dict(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", model_max_length=128)
    if chat:
        kwargs.update(bos_token="<|im_start|>", eos_token="<|im_end|>")
    else:
        kwargs.update(cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast = PreTrainedTokenizerFast(**kwargs)
    if chat:
        fast.chat_template = CHATML
    fast.save_pretrained(folder)
    return fast


def train_bpe_tokenizer(folder: Path):
    """A byte-level BPE chat tokenizer (the kind GGUF's gpt2 tokenizer model holds)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS * 2, trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<|im_start|>",
                                   eos_token="<|im_end|>", model_max_length=128)
    fast.chat_template = CHATML
    fast.save_pretrained(folder)
    return fast


def build_tiny_llama(folder: Path, *, bpe: bool = False) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = train_bpe_tokenizer(folder) if bpe else train_tokenizer(folder, chat=True)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def _bert_config(vocab: int, **extra):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, max_position_embeddings=128, **extra)


def build_tiny_bert(folder: Path, *, labels: list[str] | None = None) -> Path:
    import torch
    from transformers import BertForSequenceClassification, BertModel

    tok = train_tokenizer(folder, chat=False)
    torch.manual_seed(0)
    if labels:
        config = _bert_config(len(tok), id2label=dict(enumerate(labels)),
                              label2id={lab: i for i, lab in enumerate(labels)})
        BertForSequenceClassification(config).save_pretrained(folder)
    else:
        BertModel(_bert_config(len(tok))).save_pretrained(folder)
    return folder
