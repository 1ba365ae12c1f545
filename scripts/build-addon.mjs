// Placeholder: the native addon build lands with its issue.
