"""Layer surgery: replacement tables (`tables`), the replacements themselves (`replace`), static word vectors
(`vectors`)."""
