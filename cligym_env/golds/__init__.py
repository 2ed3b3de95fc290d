"""Gold environments beyond the spec: fetching each source kind on the host (`pypi`, `crates`, `debian`),
the image layers under a gold (`layers`), the runtime probe (`probe`) and the catalogue (`catalogue`)."""
