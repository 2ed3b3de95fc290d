pip install --force-reinstall --no-deps markupsafe
