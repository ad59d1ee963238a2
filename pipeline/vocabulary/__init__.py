"""Vocabularies: training new tokenizers on a recipe's text, and what each vocabulary entry spells."""
