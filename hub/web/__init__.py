"""What the API, the console and the self-service pages share: request dependencies, paging,
forms and their tokens, the static files. Imports only from the layers below the web."""
