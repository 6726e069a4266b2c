"""Spam vs ham: short messages as bag-of-words vectors or word embeddings, classified by one neuron.

THE CORPUS IS ILLUSTRATIVE: the messages are generated here from a few dozen hand-written
templates with random slot fillers (prizes, amounts, times, names), not collected from real
phones or mailboxes. Both classes share common words ("call", "now", "free", "today", "text") so
that a single word rarely decides; still, accuracy on a real corpus would be lower.

Pipeline:

1. generate the labelled corpus (1 = spam, 0 = ham) and split it train/test (stratified, keyed);
2. ``nnjax.data.BagOfWords`` learns the vocabulary from the training messages only;
3. model A: one logistic output neuron on 0/1 word-presence vectors, trained with ``nnjax.fit``;
4. model B: an embedding bag (``nnjax.text``): a learned vector per word, averaged over the
   message, into the same single sigmoid neuron, trained with ``nnjax.text.fit_text``;
5. accuracy, precision and recall on the test messages, and the most spam-like words of each model.

Run: ``python examples/spam_vs_ham.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common  # noqa: F401  (sets the plot backend and finds nnjax in a checkout)

import jax
import numpy as np
import optax

import nnjax
from nnjax import text

SPAM_TEMPLATES = (
    "WINNER! You have won a {prize}. Call {number} now to claim your prize",
    "Congratulations, you were selected for a free {prize}. Text CLAIM to {number}",
    "URGENT: your account has been suspended. Verify your details at {link} today",
    "Get {amount} cash today with no credit check. Apply now at {link}",
    "Free entry to win a {prize}! Text WIN to {number}. T&Cs apply",
    "You have an unclaimed reward of {amount}. Call {number} before it expires",
    "Limited offer: {amount} off {product}. Buy now at {link}, offer ends tonight",
    "Your {product} order could not be delivered. Pay the {amount} fee at {link}",
    "Hot singles in your area want to meet you. Click {link} for free",
    "Final notice: claim your {amount} refund now, reply YES to {number}",
    "Lowest price {product} guaranteed! Order today and get a bonus {prize}",
    "Dear customer, you are eligible for a {amount} loan. Call {number} free",
)
HAM_TEMPLATES = (
    "Are we still on for {meal} at {time}?",
    "Can you pick up {item} on the way home please",
    "Running {minutes} minutes late, save me a seat",
    "Call me when you are free, nothing urgent",
    "Happy birthday {name}! Hope you have a great day",
    "Thanks for {meal} yesterday, it was lovely to see you",
    "I left the {item} on the kitchen table, text me if you cannot find it",
    "Meeting moved to {time}, see you in the usual room",
    "Are you free tonight? {name} is coming over for {meal}",
    "Did you get my email about the {product} for the office",
    "Just landed, will call you from the train in {minutes} minutes",
    "Don't forget {name}'s party on Saturday, bring {item}",
)
FILLERS = {
    "prize": ["holiday", "iPhone", "gift card", "cruise", "laptop", "car", "voucher"],
    "number": ["08001234567", "87121", "80062", "09061701461", "85233"],
    "link": ["bit.ly/claim-now", "secure-verify.example", "win-today.example", "cheap-deals.example"],
    "amount": ["500 pounds", "1000 dollars", "250 pounds", "50 percent", "2000 dollars"],
    "product": ["watch", "phone", "printer", "laptop", "parcel"],
    "meal": ["lunch", "dinner", "breakfast", "coffee", "brunch"],
    "time": ["noon", "6pm", "half past seven", "3 o'clock", "10am"],
    "item": ["milk", "the keys", "bread", "the charger", "some wine", "the umbrella"],
    "minutes": ["5", "10", "15", "20"],
    "name": ["Sam", "Priya", "Tom", "Ana", "Jo", "Mum"],
}


def make_corpus(rng: np.random.Generator, per_class: int) -> tuple[list[str], np.ndarray]:
    """``per_class`` generated messages of each class, shuffled; labels 1 = spam, 0 = ham."""
    messages, labels = [], []
    for label, templates in ((1, SPAM_TEMPLATES), (0, HAM_TEMPLATES)):
        for i in range(per_class):
            template = templates[i % len(templates)]
            slots = {k: rng.choice(v) for k, v in FILLERS.items()}
            messages.append(template.format(**slots))
            labels.append(label)
    order = rng.permutation(len(messages))
    return [messages[i] for i in order], np.asarray(labels, np.int32)[order]


def scores(predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, and precision and recall of the spam class (label 1)."""
    true_pos = int(np.sum((predicted == 1) & (y == 1)))
    return {
        "accuracy": float(np.mean(predicted == y)),
        "precision": true_pos / max(int(np.sum(predicted == 1)), 1),
        "recall": true_pos / max(int(np.sum(y == 1)), 1),
    }


def top_words(values: np.ndarray, tokens: tuple[str, ...], k: int) -> list[str]:
    return [tokens[j] for j in np.argsort(-values)[:k]]


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("spam_vs_ham", "one logistic neuron on bag-of-words vs word embeddings", argv)
    per_class, epochs = (36, 60) if args.quick else (120, 150)
    rng = np.random.default_rng(args.seed)
    messages, labels = make_corpus(rng, per_class)
    index = np.arange(len(messages))
    (train_idx, y_train), (test_idx, y_test) = nnjax.data.split(args.seed, index, labels, fractions=(0.7, 0.3),
                                                                stratify=labels)
    train_texts, test_texts = [messages[i] for i in train_idx], [messages[i] for i in test_idx]
    bow = nnjax.data.BagOfWords(stop_words="english", binary=True).fit(train_texts)
    vocabulary = bow.tokens
    _common.section(f"illustrative corpus: {len(messages)} generated messages ({per_class} spam, {per_class} ham), "
                    f"{len(train_texts)} train / {len(test_texts)} test, vocabulary of {len(vocabulary)} words")
    print(f"  spam e.g.: {messages[int(np.flatnonzero(labels == 1)[0])]!r}")
    print(f"  ham e.g.:  {messages[int(np.flatnonzero(labels == 0)[0])]!r}")
    key_a, key_b = jax.random.split(jax.random.key(args.seed))

    # A: bag of words -> one sigmoid neuron (logistic regression on word presence)
    x_train, x_test = bow.transform(train_texts), bow.transform(test_texts)
    neuron = nnjax.MLP((len(vocabulary), 1), output="sigmoid")
    fit_a = nnjax.fit(key_a, neuron, (x_train, y_train), loss="binary_cross_entropy", optimizer=optax.adam(0.05),
                      epochs=epochs, batch_size=16, l2=1e-3, diagnostics=False)
    prob_a = np.asarray(nnjax.predict(fit_a.params, x_test, neuron))[:, 0]
    result_a = scores((prob_a > 0.5).astype(int), y_test)
    words_a = top_words(np.asarray(fit_a.params[0]["w"])[:, 0], vocabulary, 8)

    # B: token ids -> mean word vector -> the same single sigmoid neuron
    max_len = max(len(bow.tokenize(t)) for t in messages)
    ids_train, ids_test = bow.tokens_to_ids(train_texts, max_len), bow.tokens_to_ids(test_texts, max_len)
    model = text.EmbeddingBag(n_ids=bow.n_ids, dim=8)
    fit_b = text.fit_text(key_b, model, (ids_train, y_train), loss="binary_cross_entropy",
                          optimizer=optax.adam(0.05), epochs=epochs, batch_size=16)
    prob_b = np.asarray(text.predict(fit_b.params, ids_test, model))[:, 0]
    result_b = scores((prob_b > 0.5).astype(int), y_test)
    words_b = top_words(np.asarray(text.token_scores(fit_b.params, model))[2:, 0], vocabulary, 8)

    _common.section("test set (spam is the positive class)")
    _common.table(["model", "accuracy", "precision", "recall"],
                  [["bag of words -> logistic neuron", result_a["accuracy"], result_a["precision"], result_a["recall"]],
                   [f"embedding bag (dim {model.dim}) -> neuron", result_b["accuracy"], result_b["precision"],
                    result_b["recall"]]])
    print(f"  most spam-like words (largest weights):       {', '.join(words_a)}")
    print(f"  most spam-like words (one-word text scores):  {', '.join(words_b)}")

    new = ["Claim your free prize now", "See you at lunch", "", "zorblax quuxify"]
    p_new_a = np.asarray(nnjax.predict(fit_a.params, bow.transform(new), neuron))[:, 0]
    p_new_b = np.asarray(text.predict(fit_b.params, bow.tokens_to_ids(new, max_len), model))[:, 0]
    _common.section("new messages: P(spam); empty and all-unknown messages get the model's bias-only answer")
    _common.table(["message", "bag of words", "embedding bag"],
                  [[repr(m), float(a), float(b)] for m, a, b in zip(new, p_new_a, p_new_b)])

    shared = sorted(set(words_a) & set(words_b))
    better = "the embedding bag" if result_b["accuracy"] > result_a["accuracy"] else (
        "the bag-of-words neuron" if result_a["accuracy"] > result_b["accuracy"] else "neither model")
    _common.conclude(
        f"On this illustrative corpus the bag-of-words logistic neuron scored accuracy {result_a['accuracy']:.1%} "
        f"(precision {result_a['precision']:.1%}, recall {result_a['recall']:.1%}) and the embedding bag "
        f"{result_b['accuracy']:.1%} (precision {result_b['precision']:.1%}, recall {result_b['recall']:.1%}); "
        f"{better} did better on these {len(y_test)} test messages.",
        f"The two models agree on {len(shared)} of their 8 most spam-like words ({', '.join(shared) or 'none'}).",
        f"A message with no known word gets P(spam) = {float(p_new_a[3]):.2f} (bag of words) and "
        f"{float(p_new_b[3]):.2f} (embedding bag, which has a learned vector for unknown words); "
        f"the empty message gets {float(p_new_a[2]):.2f} and {float(p_new_b[2]):.2f}.",
    )
    return {"bag_of_words": result_a, "embedding": result_b, "words": (words_a, words_b), "n_test": len(y_test)}


if __name__ == "__main__":
    main()
