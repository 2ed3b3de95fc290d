pip install markupsafe
