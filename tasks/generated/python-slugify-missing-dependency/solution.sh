pip install text-unidecode
