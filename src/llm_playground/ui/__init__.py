"""The web app (Streamlit): chat, explore, models. Presentation only: every action is a call into the library.

`llmp ui` starts it; `app.py` is the script Streamlit runs, `views/` holds one script per page.
"""
